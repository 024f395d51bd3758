"""Coordinator API: JSON and CSV of protected tables, completeness and the directory.

Routes (all GET, all need a coordinator token or dashboard session; `format`
is `json`, the default, or `csv`; `tables`, `overview`, `completeness` and
`offices` also take `csv-de` and `xlsx`, see below):

* `/coordinator/v1/periods`: periods with reports
* `/coordinator/v1/tables?period=P&measure=M[&rows=D][&cols=D][&scope=S]`
* `/coordinator/v1/overview?period=P`: the dashboard's fixed table set
* `/coordinator/v1/completeness?period=P`
* `/coordinator/v1/offices`
* `/coordinator/v1/disclosure`: the published perturbation parameters and table

Numbers come only from `view` (which restricts by organisation first and
protects every table), and only for published periods: `tables` and
`overview` answer 409 `not-published` before a period's deadline has passed.

Formats: `json` and `csv` (long format, English codes) are for programs and
do not change. `csv-de` and `xlsx` are for people with German office software
(hub/stats/exports.py): German labels, numbers as numbers, the few-offices
mark in a "Hinweis" column of its own, an explanation of the perturbation,
text that looks like a formula defused; downloads named like
`mbe-2026-11-uebersicht.xlsx`. `csv-de` is UTF-8 with BOM, `;`, CRLF
(`text/csv; charset=utf-8; header=present`, `header=absent` for the
overview, whose tables each start with a title line); `xlsx` has one sheet
per table plus "Erläuterungen". Any other `format` is 400 `malformed`,
naming the allowed values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from hub.context import SETTINGS
from hub.errors import Problem
from hub.stats import areas, exports, view
from hub.stats.access import Coordinator, coordinator
from hub.stats.aggregate import TableSpec
from hub.stats.errors import StatsError
from hub.stats.exports import Explanation, Sheet
from hub.stats.periods import Period
from hub.stats.render import csv_text, json_obj, policy_obj, write_csv
from hub.stats.store import Publication
from hub.storage.sites import Site
from protocol.hub_api import ProblemKind

PREFIX = "/coordinator/v1"

MACHINE_FORMATS = ("json", "csv")
# For people: German labels, for Excel or LibreOffice with German settings.
OFFICE_FORMATS = ("csv-de", "xlsx")
FORMATS = MACHINE_FORMATS + OFFICE_FORMATS


def _format(request: web.Request, allowed: tuple[str, ...] = FORMATS) -> str:
    fmt = request.query.get("format", "json")
    if fmt not in allowed:
        raise Problem(ProblemKind.MALFORMED, 400, f"format must be one of {', '.join(allowed)}")
    return fmt


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


async def office_download(
    fmt: str, sheets: Sequence[Sheet], explanation: Explanation, stem: str
) -> web.Response:
    """`sheets` as `csv-de` or `xlsx`, an attachment named `stem` plus the extension."""
    if fmt == "xlsx":
        # openpyxl takes about 20 µs a cell (0.5 s for office x nationality of a large
        # region): in a thread, so the relay's requests are not held up meanwhile.
        body = await asyncio.to_thread(exports.xlsx, sheets, explanation)
        return web.Response(
            body=body,
            content_type=exports.XLSX_CONTENT_TYPE,
            headers=_attachment(f"{stem}.xlsx"),
        )
    header = "present" if exports.csv_has_header(sheets) else "absent"
    return web.Response(
        body=exports.german_csv(sheets, explanation),
        headers={
            "Content-Type": f"text/csv; charset=utf-8; header={header}",
            **_attachment(f"{stem}.csv"),
        },
    )


def _day(request: web.Request, timestamp: int) -> date:
    zone = ZoneInfo(request.app[SETTINGS].stats.timezone)
    return datetime.fromtimestamp(timestamp, zone).date()


async def _numbers_explained(request: web.Request, who: Coordinator, period: Period) -> Explanation:
    """The explanation of published numbers: dated by the period's publication."""
    published = await view.publication_of(request, period)
    if published is None:  # view.tables has refused such a period already
        raise view.not_published(request.app[SETTINGS], period)
    return Explanation(
        region=request.app[SETTINGS].region,
        data_date=_day(request, published.published),
        data_note="Veröffentlichung der Zahlen nach Ablauf der Meldefrist",
        period=period.id,
        org=who.org,
        policy=request.app[view.DISCLOSURE],
    )


def _names(sites: Iterable[Site]) -> dict[str, str]:
    return {s.node_id: s.name for s in sites}


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
    if _format(request, MACHINE_FORMATS) == "csv":
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
    sites = await view.sites_for(request, who)
    scope = await areas.parse_scope(request, q.get("scope"), who, sites, period)
    (t,) = await view.tables(request, who, period, (spec,), scope)
    if fmt == "csv":
        return csv_response(csv_text([t]), f"mbe-{period.id}-{spec.measure}.csv")
    if fmt in OFFICE_FORMATS:
        stem = "-".join(x for x in ("mbe", period.id, spec.measure, spec.rows, spec.cols) if x)
        sheet = exports.table_sheet(t, _names(sites))
        explanation = await _numbers_explained(request, who, period)
        return await office_download(fmt, [sheet], explanation, stem)
    return web.json_response(json_obj(t))


async def get_overview(request: web.Request) -> web.Response:
    who = await coordinator(request)
    fmt = _format(request)
    period = view.parse_period_param(request.query.get("period"))
    ov = await view.overview(request, who, period)
    if fmt == "csv":
        return csv_response(csv_text(ov.tables()), f"mbe-{period.id}.csv")
    if fmt in OFFICE_FORMATS:
        sheets = [exports.table_sheet(t) for t in ov.tables()]
        explanation = await _numbers_explained(request, who, period)
        return await office_download(fmt, sheets, explanation, f"mbe-{period.id}-uebersicht")
    return web.json_response({"period": period.id, "tables": [json_obj(t) for t in ov.tables()]})


def _completeness_explained(
    request: web.Request,
    who: Coordinator,
    period: Period,
    published: Publication | None,
    late: int,
) -> Explanation:
    """The Meldestand's explanation: as of today, with the deadline and publication."""
    deadline = period.deadline(request.app[SETTINGS].stats.grace_days)
    notes = [("Meldefrist", deadline.strftime("%d.%m.%Y"))]
    if published is None:
        notes.append(("Zahlen", "noch nicht veröffentlicht (erst nach Ablauf der Meldefrist)"))
    else:
        day = _day(request, published.published).strftime("%d.%m.%Y")
        notes.append(("Zahlen", f"veröffentlicht am {day}"))
    if late:
        notes.append(
            (
                "Spätere Korrekturen",
                f"{late} nach der Veröffentlichung eingegangen; sie ändern die "
                "veröffentlichten Zahlen nicht.",
            )
        )
    return Explanation(
        region=request.app[SETTINGS].region,
        data_date=view.today(request),
        data_note="Tag des Abrufs",
        period=period.id,
        org=who.org,
        notes=tuple(notes),
    )


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
    late = await view.late_count(request, period, published) if published else 0
    if fmt in OFFICE_FORMATS:
        explanation = _completeness_explained(request, who, period, published, late)
        sheets = [exports.completeness_sheet(rows, period.id)]
        return await office_download(fmt, sheets, explanation, f"mbe-{period.id}-meldestand")
    return web.json_response(
        {
            "period": period.id,
            "deadline": period.deadline(grace).isoformat(),
            "published": published is not None,
            "late_revisions": late,
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
    sites = await view.sites_for(request, who)
    if fmt in OFFICE_FORMATS:
        explanation = Explanation(
            region=request.app[SETTINGS].region,
            data_date=view.today(request),
            data_note="Tag des Abrufs",
            org=who.org,
        )
        return await office_download(
            fmt, [exports.offices_sheet(sites)], explanation, "mbe-beratungsstellen"
        )
    records = [office_record(s) for s in sites]
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
