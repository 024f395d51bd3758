"""Coordinator API: JSON and CSV of protected tables, completeness and the directory.

Routes (all GET, all need a coordinator token or dashboard session; `format`
is `json`, the default, or `csv`):

* `/coordinator/v1/periods`: periods with reports
* `/coordinator/v1/tables?period=P&measure=M[&rows=D][&cols=D][&scope=S]`
* `/coordinator/v1/overview?period=P`: the dashboard's fixed table set
* `/coordinator/v1/completeness?period=P`
* `/coordinator/v1/offices`
* `/coordinator/v1/disclosure`: the published perturbation parameters and table

Numbers come only from `view` (which restricts by organisation first and
protects every table), and only for published periods: `tables` and
`overview` answer 409 `not-published` before a period's deadline has passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from hub.context import SETTINGS
from hub.errors import Problem
from hub.stats import view
from hub.stats.access import coordinator
from hub.stats.aggregate import TableSpec
from hub.stats.errors import StatsError
from hub.stats.render import csv_text, json_obj, policy_obj, write_csv
from hub.storage.sites import Site
from protocol.hub_api import ProblemKind

PREFIX = "/coordinator/v1"


def _format(request: web.Request) -> str:
    fmt = request.query.get("format", "json")
    if fmt not in {"json", "csv"}:
        raise Problem(ProblemKind.MALFORMED, 400, "format must be json or csv")
    return fmt


def csv_response(text: str, filename: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _plain_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    return write_csv(header, rows)


async def get_periods(request: web.Request) -> web.Response:
    who = await coordinator(request)
    found = await view.known_periods(request, who)
    if _format(request) == "csv":
        return csv_response(_plain_csv(["period"], [[p] for p in found]), "periods.csv")
    return web.json_response({"periods": found})


async def get_table(request: web.Request) -> web.Response:
    who = await coordinator(request)
    fmt = _format(request)
    period = view.parse_period_param(request.query.get("period"))
    q = request.query
    try:
        spec = TableSpec(q.get("measure", ""), q.get("rows") or None, q.get("cols") or None)
    except StatsError as exc:
        raise Problem(ProblemKind.MALFORMED, 400, f"table: {exc}") from None
    scope = view.parse_scope(q.get("scope"), who, await view.sites_for(request, who))
    (t,) = await view.tables(request, who, period, (spec,), scope)
    if fmt == "csv":
        return csv_response(csv_text([t]), f"mbe-{period.id}-{spec.measure}.csv")
    return web.json_response(json_obj(t))


async def get_overview(request: web.Request) -> web.Response:
    who = await coordinator(request)
    fmt = _format(request)
    period = view.parse_period_param(request.query.get("period"))
    ov = await view.overview(request, who, period)
    if fmt == "csv":
        return csv_response(csv_text(ov.tables()), f"mbe-{period.id}.csv")
    return web.json_response({"period": period.id, "tables": [json_obj(t) for t in ov.tables()]})


async def get_completeness(request: web.Request) -> web.Response:
    who = await coordinator(request)
    fmt = _format(request)
    period = view.parse_period_param(request.query.get("period"))
    rows = await view.completeness(request, who, period)
    grace = request.app[SETTINGS].stats.grace_days
    published = await view.publication_of(request, period)
    header = ["office", "name", "organisation", "status", "first_received", "revision"]
    records = [
        [
            r.office,
            r.name,
            r.org,
            r.status.value,
            r.first_received.isoformat() if r.first_received else None,
            r.revision,
        ]
        for r in rows
    ]
    if fmt == "csv":
        text = _plain_csv(header, [["" if v is None else v for v in r] for r in records])
        return csv_response(text, f"mbe-{period.id}-completeness.csv")
    return web.json_response(
        {
            "period": period.id,
            "deadline": period.deadline(grace).isoformat(),
            "published": published is not None,
            "late_revisions": await view.late_count(request, period, published) if published else 0,
            "offices": [dict(zip(header, r, strict=True)) for r in records],
        }
    )


def office_record(s: Site) -> dict[str, Any]:
    return {
        "office": s.node_id,
        "name": s.name,
        "organisation": s.org,
        "area": s.area,
        "services": list(s.services),
        "languages": list(s.languages),
        "status": s.status,
    }


async def get_offices(request: web.Request) -> web.Response:
    who = await coordinator(request)
    fmt = _format(request)
    records = [office_record(s) for s in await view.sites_for(request, who)]
    if fmt == "csv":
        header = ["office", "name", "organisation", "area", "services", "languages", "status"]
        rows = [
            [" ".join(v) if isinstance(v, list) else v for v in (r[h] for h in header)]
            for r in records
        ]
        return csv_response(_plain_csv(header, rows), "offices.csv")
    return web.json_response({"offices": records})


async def get_disclosure(request: web.Request) -> web.Response:
    """The disclosure control's published parameters and perturbation table: what a
    coordinator needs to read the numbers (and what anyone may know)."""
    await coordinator(request)
    disclosure = request.app[view.DISCLOSURE]
    return web.json_response({**policy_obj(disclosure), "table": disclosure.table.as_rows()})


def add_api_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/periods", get_periods)
    app.router.add_get(f"{PREFIX}/tables", get_table)
    app.router.add_get(f"{PREFIX}/overview", get_overview)
    app.router.add_get(f"{PREFIX}/completeness", get_completeness)
    app.router.add_get(f"{PREFIX}/offices", get_offices)
    app.router.add_get(f"{PREFIX}/disclosure", get_disclosure)
