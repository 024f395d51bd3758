"""The dashboard view "Verlauf" (/dashboard/trends): each key figure over the last 12
months and 8 quarters up to the chosen period, with its changes.

The rules (which periods, how changes are computed, what "vorläufig" means) are
in hub/stats/trends.py and docs/statistics.md, "Trends on the dashboard".
`load` is shared with the coordinator API (hub/stats/trend_api.py), so the page
and its downloads show the same numbers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from hub.context import DB, SETTINGS
from hub.stats import labels, trends, view
from hub.stats.access import Coordinator
from hub.stats.frame import Frame, render
from hub.stats.periods import Period
from hub.stats.trend_charts import (
    ChangeText,
    TrendChart,
    change_text,
    series_title,
    trend_chart,
    value_text,
)

API_PATH = "/coordinator/v1/trends"


async def load(request: web.Request, who: Coordinator, chosen: Period) -> trends.Trend:
    """The key figures around `chosen` as `who` may see them.

    Each period goes through `view.publication_of`, which publishes a period
    whose deadline has passed (the first read after the cutoff does, as for every
    route); then every published period's totals are read in one database job.
    """
    win = trends.window(chosen)
    held = await asyncio.gather(*(view.publication_of(request, p) for p in win.periods))
    published = [p for p, h in zip(win.periods, held, strict=True) if h is not None]
    app = request.app
    tables = await app[DB].run(
        trends.read_totals, app[view.DISCLOSURE], published, who.org, view.KEY_MEASURES
    )
    return trends.build(win, tables, view.KEY_MEASURES)


@dataclass(frozen=True)
class FigureView:
    """One key figure as the page shows it."""

    measure: str
    name: str
    current: str  # the chosen period's number, or why there is none
    current_state: str
    changes: tuple[ChangeText, ...]
    months: TrendChart
    quarters: TrendChart


def figure_view(f: trends.Figure, kind: str) -> FigureView:
    return FigureView(
        measure=f.measure,
        name=labels.measure(f.measure),
        current=value_text(f.current),
        current_state=f.current.state,
        changes=tuple(change_text(c, kind) for c in f.changes),
        months=trend_chart(
            f.months, f"trend-{f.measure}-months", series_title(f.measure, f.months, "month")
        ),
        quarters=trend_chart(
            f.quarters,
            f"trend-{f.measure}-quarters",
            series_title(f.measure, f.quarters, "quarter"),
        ),
    )


def download_link(period: Period, fmt: str) -> str:
    return API_PATH + "?" + urlencode({"period": period.id, "format": fmt})


async def page(request: web.Request, frame: Frame) -> str:
    trend = await load(request, frame.who, frame.period)
    kind = frame.period.kind
    figures = [figure_view(f, kind) for f in trend.figures]
    deadline = ""
    if trend.figures and trend.figures[0].current.state == "provisional":
        grace = request.app[SETTINGS].stats.grace_days
        deadline = frame.period.deadline(grace).strftime("%d.%m.%Y")
    return render(
        "trends.html",
        frame,
        figures=figures,
        comparisons=figures[0].changes if figures else (),
        months=trend.window.months,
        quarters=trend.window.quarters,
        csv_link=download_link(frame.period, "csv-de"),
        xlsx_link=download_link(frame.period, "xlsx"),
        policy=request.app[view.DISCLOSURE],
        deadline=deadline,
    )
