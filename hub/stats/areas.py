"""Areas (Gebiete): the area scope of the coordinator API and the planning view's data.

An area is a level like an organisation (docs/statistics.md, "Areas"): each
published office's area is fixed at publication (`stats_published_reports.area`),
the publication's sums are per (organisation, area), and `Scope("area", key)` /
rows `area` sum exactly the units of an area. Offices without an area form the
area `""` (`aggregate.NO_AREA`), shown as "ohne Gebiet".

What a coordinator may see is restricted first, as everywhere: an
organisation-limited coordinator's areas are those of their own offices (in the
directory, or recorded for their offices at the period's publication), and
every number in an area is of their offices only (`protected_tables*` select
their rows in SQL and restrict again).

The planning view (hub/stats/area_view.py) gets everything here: per area the
published active and new cases, the number of active offices from the
directory (not a statistic), cases per office from the published number, and
per area the published tables by topic, residence status and organisation.
Every number is an `Entry` of a `ProtectedTable`; the one figure made here,
cases per office, is computed from a published number and a directory count.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from hub.context import DB, SETTINGS
from hub.errors import Problem
from hub.stats import labels, view
from hub.stats.access import Coordinator
from hub.stats.aggregate import AREA, NO_AREA, ORGANISATION, Scope, TableSpec
from hub.stats.disclosure import Entry, ProtectedTable
from hub.stats.periods import Period
from hub.stats.published import protected_tables_by_scope
from hub.storage.engine import Db
from hub.storage.sites import Site
from protocol.hub_api import ProblemKind

ACTIVE, NEW = "cases_active", "cases_new"
# The planning view's marker: cases per office above this multiple of the median
# over the areas shown (offices without an area left out: they are no place).
MANY_FACTOR = 1.5

SUMMARY_SPECS = (TableSpec(ACTIVE, AREA), TableSpec(NEW, AREA))
DETAIL_SPECS = (
    TableSpec(ACTIVE, "topic"),
    TableSpec(ACTIVE, "residence"),
    TableSpec(ACTIVE, ORGANISATION),
)


def area_name(key: str) -> str:
    """The German name of an area key: the key itself, `ohne Gebiet` for NO_AREA."""
    return labels.area(key)


def sort_key(key: str) -> tuple[bool, str]:
    """Areas by name, "ohne Gebiet" last."""
    return (key == NO_AREA, key.casefold())


def published_areas(db: Db, period: str, org: str | None) -> dict[str, int]:
    """Area -> offices whose report counts in `period`'s publication (of `org` only if
    given): the areas recorded at publication. Empty before publication."""
    return {
        area: int(n)
        for area, n in db.execute(
            "SELECT area, count(*) FROM stats_published_reports "
            "WHERE period = ? AND (CAST(? AS TEXT) IS NULL OR org = ?) GROUP BY area",
            (period, org, org),
        )
    }


def directory_areas(sites: Sequence[Site]) -> set[str]:
    """The areas of these sites (already limited to what the coordinator may see)."""
    return {s.area for s in sites}


async def reporting_by_area(
    request: web.Request, who: Coordinator, period: Period
) -> dict[str, int]:
    return dict(await request.app[DB].run(published_areas, period.id, who.org))


async def parse_scope(
    request: web.Request, raw: str | None, who: Coordinator, sites: list[Site], period: Period
) -> Scope:
    """`view.parse_scope` plus `area:KEY` (`area:` alone: offices without an area).

    An area is known to `who` when one of their offices is in it in the directory
    or was at `period`'s publication (an office may have moved since); else 404,
    as for an organisation or office they cannot see.
    """
    if raw is None or not raw.startswith(f"{AREA}:"):
        return view.parse_scope(raw, who, sites)
    key = raw.partition(":")[2]
    known = directory_areas(view.visible(who, sites))
    if key not in known:
        known |= set(await reporting_by_area(request, who, period))
    if key not in known:
        detail = f"no area {view.shown(key)} among the offices you may see"
        raise Problem(ProblemKind.NOT_FOUND, 404, detail)
    return Scope("area", key)


def per_office(entry: Entry | None, offices: int) -> float | None:
    """Published active cases per active office; None without a number or office."""
    if entry is None or offices == 0:
        return None
    return entry.value / offices


def german_decimal(value: float) -> str:
    """One decimal with a German comma: 12.25 -> "12,3" (half away from zero)."""
    tenths = int(value * 10 + 0.5)  # values are never negative
    return f"{tenths // 10:,}".replace(",", ".") + f",{tenths % 10}"


@dataclass(frozen=True)
class AreaRow:
    """One area of the summary table."""

    key: str
    offices: int  # active offices in the directory that the coordinator may see
    reporting: int  # offices whose report counts in this period's numbers
    active: Entry | None  # None: no office of the area reported ("keine Meldung")
    new: Entry | None
    per_office: float | None
    many: bool  # cases per office above MANY_FACTOR x the median

    @property
    def name(self) -> str:
        return area_name(self.key)

    @property
    def per_office_text(self) -> str:
        return "–" if self.per_office is None else german_decimal(self.per_office)


@dataclass(frozen=True)
class AreaDetail:
    """One area's published tables and the offices serving it."""

    key: str
    topic: ProtectedTable | None  # None: no office of the area reported
    residence: ProtectedTable | None
    organisations: ProtectedTable | None
    sites: tuple[Site, ...]  # the directory's active offices of the area

    @property
    def name(self) -> str:
        return area_name(self.key)


@dataclass(frozen=True)
class AreaPlan:
    """The planning view of one published period, as one coordinator may see it."""

    rows: tuple[AreaRow, ...]
    median: float | None  # of cases per office over the areas (NO_AREA left out)
    threshold: float | None  # MANY_FACTOR x median; None: nothing to compare
    details: tuple[AreaDetail, ...]
    reporting_offices: int


def median_and_threshold(values: Sequence[float]) -> tuple[float | None, float | None]:
    """The median of cases per office and the marker's threshold (None if no median
    above 0: then no area stands out)."""
    if not values:
        return None, None
    middle = statistics.median(values)
    return middle, (middle * MANY_FACTOR if middle > 0 else None)


def active_sites(sites: Sequence[Site]) -> dict[str, list[Site]]:
    """Area -> its active offices in the directory, by name."""
    out: dict[str, list[Site]] = {}
    for s in sorted(sites, key=lambda s: (s.name.casefold(), s.node_id)):
        if s.status == "active":
            out.setdefault(s.area, []).append(s)
    return out


def build_plan(
    keys: Sequence[str],
    offices: dict[str, list[Site]],
    reporting: dict[str, int],
    summary: Sequence[ProtectedTable],
    details: Mapping[str, Sequence[ProtectedTable]],
) -> AreaPlan:
    """The plan from protected tables and directory facts (no database, no request)."""
    active_t, new_t = summary

    def row_entry(t: ProtectedTable, key: str) -> Entry | None:
        if not reporting.get(key):
            return None
        # Rows by area list every area with a published report, also one whose
        # offices counted nothing (its published 0).
        return t.row_totals[t.row_labels.index(key)]

    rows = []
    for key in keys:
        active = row_entry(active_t, key)
        n = len(offices.get(key, ()))
        rows.append((key, n, active, row_entry(new_t, key), per_office(active, n)))
    middle, threshold = median_and_threshold(
        [r[4] for r in rows if r[0] != NO_AREA and r[4] is not None]
    )
    made = tuple(
        AreaRow(
            key=key,
            offices=n,
            reporting=reporting.get(key, 0),
            active=active,
            new=new,
            per_office=ratio,
            many=threshold is not None and key != NO_AREA and (ratio or 0) > threshold,
        )
        for key, n, active, new, ratio in rows
    )
    shown = tuple(
        AreaDetail(
            key=key,
            topic=details[key][0] if reporting.get(key) else None,
            residence=details[key][1] if reporting.get(key) else None,
            organisations=details[key][2] if reporting.get(key) else None,
            sites=tuple(offices.get(key, ())),
        )
        for key in details
    )
    return AreaPlan(
        rows=made,
        median=middle,
        threshold=threshold,
        details=shown,
        reporting_offices=active_t.reporting_offices,
    )


def area_keys(sites: Sequence[Site], reporting: dict[str, int]) -> list[str]:
    """The areas a coordinator sees for a period: of their active offices in the
    directory, and those recorded for their offices at publication."""
    found = {s.area for s in sites if s.status == "active"} | set(reporting)
    return sorted(found, key=sort_key)


async def plan(
    request: web.Request, who: Coordinator, period: Period, chosen: str | None
) -> AreaPlan:
    """The planning view's numbers of a published `period` (view.publication_of is
    not None): the summary of every area `who` sees and the details of `chosen`
    (an area key) or of every area. Raises 404 for an area `who` cannot see."""
    app = request.app
    if await view.publication_of(request, period) is None:
        raise view.not_published(app[SETTINGS], period)
    sites = await view.sites_for(request, who)
    reporting = await reporting_by_area(request, who, period)
    keys = area_keys(sites, reporting)
    if chosen is not None and chosen not in keys:
        detail = f"no area {view.shown(chosen)} among your offices"
        raise Problem(ProblemKind.NOT_FOUND, 404, detail)
    detail_keys = [chosen] if chosen is not None else keys
    # One read of the period's sums for every table of the page; region first.
    scopes = [Scope.region(), *(Scope("area", k) for k in detail_keys)]
    found = await app[DB].run(
        protected_tables_by_scope,
        app[view.DISCLOSURE],
        period,
        who.org,
        SUMMARY_SPECS + DETAIL_SPECS,
        scopes,
    )
    split = len(SUMMARY_SPECS)
    summary = found[Scope.region()][:split]
    details = {k: found[Scope("area", k)][split:] for k in detail_keys}
    return build_plan(keys, active_sites(sites), reporting, summary, details)


async def offices_by_area(
    request: web.Request, who: Coordinator, chosen: str | None
) -> list[tuple[str, list[Site]]]:
    """(area, its active offices) for the directory part of the page, all areas or `chosen`."""
    sites = await view.sites_for(request, who)
    grouped = active_sites(sites)
    keys = sorted(grouped, key=sort_key)
    if chosen is not None:
        if chosen not in keys:
            detail = f"no area {view.shown(chosen)} among your offices"
        raise Problem(ProblemKind.NOT_FOUND, 404, detail)
        keys = [chosen]
    return [(k, grouped[k]) for k in keys]
