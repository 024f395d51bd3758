"""Horizontal bar charts, laid out on the server from protected tables.

This module only computes the geometry; `templates/chart.html` draws it as
inline SVG, so every label goes through the template's autoescaping like any
other text. No script and no style attribute (the dashboard's
Content-Security-Policy allows neither): shapes carry classes that
`dashboard.css` colours. Every number is a published (perturbed) one; a number
from fewer than `min_offices` offices gets a footnote mark.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.stats import labels
from hub.stats.disclosure import ProtectedTable

WIDTH = 640
LABEL_W = 230
BAR_W = 330
ROW_H = 26
TOP = 8
FEW_MARK = "¹"
NARROW_W = 360
NARROW_ROW = 38
NARROW_BAR_W = 300


@dataclass(frozen=True)
class Bar:
    """One row of a chart: its code, German label, position and published value."""

    code: str
    name: str
    y: int  # top of the track and the bar
    text_y: float  # baseline of the label and the value
    width: float  # of the bar; the track is always BAR_W wide
    value: int
    few: bool  # from fewer than min_offices offices


@dataclass(frozen=True)
class Chart:
    """What `templates/chart.html` needs to draw one chart."""

    id: str
    title: str
    height: int
    bars: tuple[Bar, ...]
    width: int = WIDTH
    label_x: int = LABEL_W - 8  # labels end here (text-anchor="end")
    bar_x: int = LABEL_W
    track_width: int = BAR_W
    bar_height: int = ROW_H - 8
    value_x: int = LABEL_W + BAR_W + 8
    # The phone layout (templates/chart.html draws both; dashboard.css shows one):
    # each label on its own line above a full-width bar, so a 360 px screen shows
    # the labels at about their size instead of scaling the wide chart to half.
    top: int = TOP
    narrow_width: int = NARROW_W
    narrow_row: int = NARROW_ROW
    narrow_track: int = NARROW_BAR_W

    @property
    def narrow_height(self) -> int:
        return self.top * 2 + self.narrow_row * len(self.bars)


def bar_chart(table: ProtectedTable, chart_id: str, title: str) -> Chart:
    """The chart of a 1-D protected table: one bar per row label."""
    dim = table.spec.rows or ""
    # German label order: what a reader scans for, not the order of the English codes.
    entries = sorted(
        zip(table.row_labels, table.row_totals, strict=True),
        key=lambda item: labels.code(dim, item[0]).casefold(),
    )
    top = max([e.value for _, e in entries] + [1])
    bars = []
    for i, (code, entry) in enumerate(entries):
        y = TOP + i * ROW_H
        bars.append(
            Bar(
                code=code,
                name=labels.code(dim, code),
                y=y + 4,
                text_y=y + ROW_H / 2 + 4,
                width=round(BAR_W * entry.value / top, 1),
                value=entry.value,
                few=entry.few_offices,
            )
        )
    return Chart(id=chart_id, title=title, height=TOP * 2 + ROW_H * len(entries), bars=tuple(bars))
