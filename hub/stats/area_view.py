"""The dashboard view "Gebiete" (/dashboard/areas): planning by area (issue 13).

For the chosen period one row per area the coordinator sees (the region's
coordinator: every area; an organisation's: the areas of its own offices, with
their numbers only): published active and new cases, the area's active offices
from the directory, cases per office and a marker for areas with many cases per
office. Then, per area or for one area (`?area=KEY`; `?area=` is the offices
without an area), active cases by topic and by residence status as charts, by
organisation, and the offices serving the area with their services and
languages. Before the period is published: the provisional note and the offices
only.

The numbers come from hub/stats/areas.py (one read of the period's sums, every
number protected); this module only turns them into the page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from hub.context import SETTINGS
from hub.stats import areas, view
from hub.stats.aggregate import AREA
from hub.stats.areas import AreaPlan
from hub.stats.charts import Chart, bar_chart
from hub.stats.frame import Frame, render

PATH = "/dashboard/areas"
# Downloads of the summary's table (active cases by area) from the coordinator API.
DOWNLOADS = (
    ("csv-de", "Tabelle für Excel (CSV)"),
    ("xlsx", "Tabelle als Excel-Datei"),
    ("csv", "CSV für Programme"),
)


def chosen_area(request: web.Request) -> str | None:
    """The area asked for: None for all, "" (present but empty) for "ohne Gebiet"."""
    return request.query.get("area")


def download_links(period: str) -> list[tuple[str, str]]:
    """(text, href) of the area table's downloads."""
    return [
        (
            text,
            "/coordinator/v1/tables?"
            + urlencode({"period": period, "measure": areas.ACTIVE, "rows": AREA, "format": fmt}),
        )
        for fmt, text in DOWNLOADS
    ]


def charts(plan: AreaPlan) -> dict[str, list[Chart]]:
    """Area -> its charts of active cases by topic and by residence status."""
    out: dict[str, list[Chart]] = {}
    for i, d in enumerate(plan.details, start=1):
        out[d.key] = [
            bar_chart(t, f"area-{i}-{t.spec.rows}", f"{d.name}: Aktive Fälle nach {title}")
            for t, title in ((d.topic, "Thema"), (d.residence, "Aufenthaltsstatus"))
            if t is not None
        ]
    return out


async def page(request: web.Request, frame: Frame) -> str:
    who, period = frame.who, frame.period
    chosen = chosen_area(request)
    deadline = period.deadline(request.app[SETTINGS].stats.grace_days).strftime("%d.%m.%Y")
    published = await view.publication_of(request, period)
    if published is None:
        return render(
            "areas.html",
            frame,
            plan=None,
            chosen=chosen,
            deadline=deadline,
            offices=await areas.offices_by_area(request, who, chosen),
            area_name=areas.area_name,
            area_link=lambda key: frame.link(PATH, area=key),
        )
    plan = await areas.plan(request, who, period, chosen)
    return render(
        "areas.html",
        frame,
        plan=plan,
        chosen=chosen,
        deadline=deadline,
        charts=charts(plan),
        downloads=download_links(period.id),
        policy=request.app[view.DISCLOSURE],
        factor=areas.german_decimal(areas.MANY_FACTOR),
        median=None if plan.median is None else areas.german_decimal(plan.median),
        area_name=areas.area_name,
        area_link=lambda key: frame.link(PATH, area=key),
        all_link=frame.link(PATH),
    )
