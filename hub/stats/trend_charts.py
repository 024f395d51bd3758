"""Column charts of the "Verlauf" view and the German texts of its numbers and changes.

Like hub/stats/charts.py this module only computes geometry and text;
`templates/trend_chart.html` draws it as inline SVG, so every label is escaped
by the template. No script and no style attribute: shapes carry classes that
dashboard.css colours.

A period without a published number never looks like one: a period not yet
published gets no column but a hatched, dashed placeholder labelled
"vorläufig"; a published period without any reporting office gets the label
"keine Meldung" and no column. A published 0 is a label "0" on the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hub.stats import labels
from hub.stats.charts import FEW_MARK
from hub.stats.trends import Change, Point

WIDTH = 520
HEIGHT = 230
LEFT = 48  # room for the tick labels
RIGHT = 8
TOP = 22  # room for the value above the highest column
BOTTOM = 40  # two lines of axis labels: period, year
BAR_SHARE = 0.64  # of a column's slot

MINUS = "\u2212"  # the typographic minus: "−3", not "-3"
NBSP = "\u00a0"  # keeps "4,5 %" on one line

STATE_TEXT = {"provisional": "vorläufig", "no_report": "keine Meldung"}
AGAINST_TEXT = {
    ("month", "previous"): "Vormonat",
    ("month", "year_before"): "Vorjahresmonat",
    ("quarter", "previous"): "Vorquartal",
    ("quarter", "year_before"): "Vorjahresquartal",
    ("year", "year_before"): "Vorjahr",
}
_MONTHS = ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez")


# --- German numbers ---------------------------------------------------------------


def number(value: int) -> str:
    """`1234` -> `1.234`, `-3` -> `−3`."""
    text = f"{abs(value):,}".replace(",", ".")
    return MINUS + text if value < 0 else text


def signed(value: int) -> str:
    """A difference: `+12`, `−3`, `±0`."""
    if value == 0:
        return "±0"
    return ("+" if value > 0 else MINUS) + number(abs(value))


def signed_percent(value: Decimal) -> str:
    """A change in percent, one decimal: `+4,5 %`, `−12,0 %`, `±0,0 %`."""
    digits = f"{abs(value):,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    sign = "±" if value == 0 else "+" if value > 0 else MINUS
    return f"{sign}{digits}{NBSP}%"


def value_text(p: Point) -> str:
    """What a period shows: its number (with the few-offices mark) or why there is none."""
    if p.value is None:
        return STATE_TEXT[p.state]
    return number(p.value) + (FEW_MARK if p.few else "")


@dataclass(frozen=True)
class ChangeText:
    """A change as the page shows it; `note` says why a part is "–"."""

    against: str  # "previous" or "year_before"
    name: str  # "Vormonat", ...
    base: str  # the earlier period, German ("Oktober 2025"); "" if there is none
    difference: str
    percent: str
    note: str


def change_text(change: Change, kind: str) -> ChangeText:
    """`+12` and `+4,5 %`, or `–` with the reason: a side not published yet, a side
    without any reporting office, no earlier period, or an earlier number of 0 (no
    percent)."""
    base = "" if change.base is None else labels.period(change.base.period.id)
    name = AGAINST_TEXT[(kind, change.against)]
    missing = change.missing
    diff, pct = change.difference, change.percent
    if change.base is None:
        note = "kein Vergleichszeitraum"
    elif missing is not None:
        note = f"{labels.period(missing.period.id)}: {STATE_TEXT[missing.state]}"
    elif pct is None:
        note = "Vergleichswert 0: keine Prozentangabe"
    else:
        note = ""
    return ChangeText(
        against=change.against,
        name=name,
        base=base,
        difference="–" if diff is None else signed(diff),
        percent="–" if pct is None else signed_percent(pct),
        note=note,
    )


# --- geometry ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Column:
    """One period of a chart: its slot, and a column or the reason there is none."""

    period: str  # id
    name: str  # German: "November 2026"
    axis: str  # "Nov", "Q4"
    axis_year: str  # the year under January / Q1 and the first column, else ""
    state: str
    text: str  # value or "vorläufig" / "keine Meldung"
    few: bool
    center: float
    bar_x: float
    bar_width: float
    bar_y: float  # top of the column (the baseline for a 0)
    bar_height: float
    text_y: float  # baseline of the value above the column


@dataclass(frozen=True)
class TrendChart:
    """What `templates/trend_chart.html` needs to draw one series."""

    id: str
    title: str
    columns: tuple[Column, ...]
    ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    baseline: int = HEIGHT - BOTTOM

    @property
    def plot_height(self) -> int:
        return self.baseline - self.plot_top

    @property
    def tick_x(self) -> int:
        return self.plot_left - 6

    @property
    def state_y(self) -> float:
        """Middle of the plot: where "vorläufig" / "keine Meldung" are centred."""
        return self.plot_top + self.plot_height / 2


def nice_step(top: int) -> int:
    """The smallest of 1, 2, 2.5 (from 25 on), 5 times a power of ten that splits
    `top` into at most four steps, so tick labels are round numbers."""
    power = 1
    while True:
        for factor in (10, 20, 25, 50):
            step = factor * power // 10
            if step and step * 4 >= top and (factor != 25 or power >= 10):
                return step
        power *= 10


def _axis(p: Point, first: bool) -> tuple[str, str]:
    period = p.period
    if period.kind == "month":
        head, starts = _MONTHS[period.index - 1], period.index == 1
    elif period.kind == "quarter":
        head, starts = f"Q{period.index}", period.index == 1
    else:
        head, starts = str(period.year), False
    return head, str(period.year) if (first or starts) and period.kind != "year" else ""


def trend_chart(points: tuple[Point, ...], chart_id: str, title: str) -> TrendChart:
    """A column per published period, scaled to round ticks; placeholders otherwise."""
    highest = max((p.value for p in points if p.value is not None), default=0)
    step = nice_step(highest) if highest > 0 else 0
    top = -(-highest // step) * step if step else 0
    base = HEIGHT - BOTTOM
    height = base - TOP
    ticks = (
        tuple(Tick(base - height * v / top, number(v)) for v in range(0, top + 1, step))
        if top
        else (Tick(base, "0"),)
    )
    slot = (WIDTH - RIGHT - LEFT) / max(len(points), 1)
    columns = []
    for i, p in enumerate(points):
        center = LEFT + slot * (i + 0.5)
        bar_h = height * p.value / top if p.value and top else 0.0
        axis, year = _axis(p, i == 0)
        columns.append(
            Column(
                period=p.period.id,
                name=labels.period(p.period.id),
                axis=axis,
                axis_year=year,
                state=p.state,
                text=value_text(p),
                few=p.few,
                center=round(center, 1),
                bar_x=round(center - slot * BAR_SHARE / 2, 1),
                bar_width=round(slot * BAR_SHARE, 1),
                bar_y=round(base - bar_h, 1),
                bar_height=round(bar_h, 1),
                text_y=round(base - bar_h - 5, 1),
            )
        )
    return TrendChart(id=chart_id, title=title, columns=tuple(columns), ticks=ticks)


def series_title(measure: str, points: tuple[Point, ...], kind: str) -> str:
    """`Aktive Fälle je Monat, Dezember 2025 bis November 2026`."""
    each = "je Monat" if kind == "month" else "je Quartal"
    if not points:
        return f"{labels.measure(measure)} {each}"
    first, last = labels.period(points[0].period.id), labels.period(points[-1].period.id)
    return f"{labels.measure(measure)} {each}, {first} bis {last}"
