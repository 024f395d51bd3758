"""Horizontal bar charts as inline SVG, drawn on the server from protected tables.

No script and no style attribute (the dashboard's Content-Security-Policy
allows neither): shapes carry classes that `dashboard.css` colours. Every
number is a published (perturbed) one; a number from fewer than `min_offices`
offices gets a footnote mark.
"""

from __future__ import annotations

from html import escape

from hub.stats import labels
from hub.stats.disclosure import ProtectedTable

WIDTH = 640
LABEL_W = 230
BAR_W = 330
ROW_H = 26
TOP = 8
FEW_MARK = "¹"


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def bar_chart(table: ProtectedTable, chart_id: str, title: str) -> str:
    """An SVG chart of a 1-D protected table: one bar per row label."""
    dim = table.spec.rows or ""
    # German label order: what a reader scans for, not the order of the English codes.
    entries = sorted(
        zip(table.row_labels, table.row_totals, strict=True),
        key=lambda item: labels.code(dim, item[0]).casefold(),
    )
    top = max([e.value for _, e in entries] + [1])
    height = TOP * 2 + ROW_H * len(entries)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_attr(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-labelledby="{_attr(chart_id)}-title">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
    ]
    for i, (code, entry) in enumerate(entries):
        y = TOP + i * ROW_H
        mid = y + ROW_H / 2 + 4
        name = labels.code(dim, code)
        parts.append(f'<g class="bar-row" data-code="{_attr(code)}">')
        parts.append(
            f'<text class="bar-label" x="{LABEL_W - 8}" y="{mid}" text-anchor="end">'
            f"{escape(name)}</text>"
        )
        parts.append(
            f'<rect class="bar-track" x="{LABEL_W}" y="{y + 4}" width="{BAR_W}" '
            f'height="{ROW_H - 8}" rx="3"/>'
        )
        w = round(BAR_W * entry.value / top, 1)
        few = FEW_MARK if entry.few_offices else ""
        css = "bar few" if entry.few_offices else "bar"
        parts.append(
            f'<rect class="{css}" x="{LABEL_W}" y="{y + 4}" width="{w}" '
            f'height="{ROW_H - 8}" rx="3"><title>{escape(name)}: {entry.value}</title></rect>'
        )
        parts.append(
            f'<text class="bar-value" x="{LABEL_W + BAR_W + 8}" y="{mid}">{entry.value}{few}</text>'
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
