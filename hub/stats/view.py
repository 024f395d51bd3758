"""What one coordinator may see: offices, completeness and protected tables.

Every coordinator output (JSON, CSV, dashboard) gets its data here and only
here, and every function takes the `Coordinator` first: an
organisation-limited coordinator's offices are filtered before anything else
(in the SQL that reads a period's numbers and by `restrict_to_organisation`,
hub/stats/published.py; the same filter on sites), so no route can forget it.
Tables leave this module only as `ProtectedTable`s (`protect`).

Numbers exist only for published periods (`publication_of`): before a period's
reporting deadline has passed, every route that would show a number refuses
(`not-published`) and the dashboard shows completeness only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from hub.context import DB, DEPS, SETTINGS
from hub.errors import Problem
from hub.settings import HubSettings
from hub.stats import publication
from hub.stats.access import Coordinator
from hub.stats.aggregate import ORGANISATION, Scope, TableSpec
from hub.stats.disclosure import DisclosurePolicy, ProtectedTable
from hub.stats.errors import StatsError
from hub.stats.periods import Period, Timeliness, parse_period, previous_closed, timeliness
from hub.stats.ptable import PerturbationParams
from hub.stats.published import protected_tables
from hub.stats.store import Publication, arrivals, periods
from hub.storage.sites import Site, list_sites
from protocol.hub_api import ProblemKind

# The tables the dashboard and its CSV show for a period: every measure's
# total, and the active cases by topic and by residence status. (Protection does
# not depend on this choice: every number of every table is perturbed by its
# own records, docs/statistics.md.)
KEY_MEASURES = (
    "cases_new",
    "cases_active",
    "cases_closed",
    "case_management_with_agreement",
    "contacts",
    "family_members",
    "referrals_sent",
    "referrals_accepted",
    "referrals_declined",
)
CHART_MEASURE = "cases_active"
CHART_DIMENSIONS = ("topic", "residence")


@dataclass(frozen=True)
class CompletenessRow:
    """One office's reporting for a period (no numbers, only whether and when)."""

    office: str
    name: str
    org: str
    status: Timeliness
    first_received: date | None
    revision: int | None


@dataclass(frozen=True)
class Overview:
    """The dashboard's tables of one published period."""

    period: str
    figures: tuple[ProtectedTable, ...]
    charts: tuple[ProtectedTable, ...]

    def tables(self) -> tuple[ProtectedTable, ...]:
        return self.figures + self.charts


DISCLOSURE = web.AppKey("stats_disclosure", DisclosurePolicy)


def policy(settings: HubSettings) -> DisclosurePolicy:
    """The disclosure policy of these settings (built once per app, see add_stats)."""
    s = settings.stats
    params = PerturbationParams(max_noise=s.max_noise, variance=s.variance, js=s.js)
    return DisclosurePolicy(params=params, min_offices=s.min_offices)


def today(request: web.Request) -> date:
    zone = ZoneInfo(request.app[SETTINGS].stats.timezone)
    return datetime.fromtimestamp(request.app[DEPS].clock.now(), zone).date()


def visible(who: Coordinator, sites: list[Site]) -> list[Site]:
    """The sites this coordinator may see: all, or one organisation's."""
    return [s for s in sites if who.org is None or s.org == who.org]


async def sites_for(request: web.Request, who: Coordinator) -> list[Site]:
    return visible(who, await request.app[DB].run(list_sites))


def parse_period_param(raw: str | None) -> Period:
    if raw is None:
        raise Problem(
            ProblemKind.MALFORMED, 400, "query parameter period is required (e.g. 2026-11)"
        )
    try:
        return parse_period(raw)
    except StatsError as exc:
        raise Problem(ProblemKind.MALFORMED, 400, f"period: {exc}") from None


async def publication_of(request: web.Request, period: Period) -> Publication | None:
    """The period's publication; made now if its cutoff has passed, else None."""
    app = request.app
    return await app[DB].run(publication.due, period, app[SETTINGS], app[DEPS].clock.now())


async def late_count(request: web.Request, period: Period, held: Publication) -> int:
    """Reports of `period` that arrived after its numbers were fixed."""
    return int(await request.app[DB].run(publication.late_count, period, held))


def not_published(settings: HubSettings, period: Period) -> Problem:
    deadline = period.deadline(settings.stats.grace_days).isoformat()
    return Problem(
        ProblemKind.NOT_PUBLISHED,
        409,
        f"the numbers of {period.id} are published once its reporting deadline "
        f"({deadline}) has passed; until then only completeness is available",
    )


async def tables(
    request: web.Request,
    who: Coordinator,
    period: Period,
    specs: Sequence[TableSpec],
    scope: Scope,
) -> tuple[ProtectedTable, ...]:
    """The protected tables `specs` in `scope` of `period`, as `who` may see them.

    Raises `not-published` before the period's deadline has passed. The read
    (hub/stats/published.py) runs on the database thread: it reads only the
    cells these tables need, from sums made at publication, in milliseconds.
    """
    app = request.app
    if await publication_of(request, period) is None:
        raise not_published(app[SETTINGS], period)
    return await app[DB].run(
        protected_tables, app[DISCLOSURE], period, who.org, tuple(specs), scope
    )


def shown(value: str) -> str:
    """A value the caller sent, quoted and short enough for a problem's detail."""
    return repr(value if len(value) <= 60 else value[:60] + "…")


def parse_scope(raw: str | None, who: Coordinator, sites: list[Site]) -> Scope:
    """`region`, `organisation:KEY` or `office:ID`, limited to what `who` may see."""
    if raw is None or raw == "region":
        return Scope.region()
    level, _, key = raw.partition(":")
    seen = visible(who, sites)
    if level == ORGANISATION and key in {s.org for s in seen}:
        return Scope("organisation", key)
    if level == "office" and key in {s.node_id for s in seen}:
        return Scope("office", key)
    if level in {ORGANISATION, "office"}:
        raise Problem(
            ProblemKind.NOT_FOUND, 404, f"no {level} {shown(key)} among the offices you may see"
        )
    raise Problem(ProblemKind.MALFORMED, 400, "scope must be region, organisation:KEY or office:ID")


OVERVIEW_SPECS = tuple(TableSpec(m) for m in KEY_MEASURES) + tuple(
    TableSpec(CHART_MEASURE, dim) for dim in CHART_DIMENSIONS
)


async def overview(request: web.Request, who: Coordinator, period: Period) -> Overview:
    """The dashboard's tables of `period` for the region (or `who`'s organisation)."""
    found = await tables(request, who, period, OVERVIEW_SPECS, Scope.region())
    split = len(KEY_MEASURES)
    return Overview(period.id, found[:split], found[split:])


async def completeness(
    request: web.Request, who: Coordinator, period: Period
) -> list[CompletenessRow]:
    """Every office expected to report `period`, with its status.

    Expected: active offices that had enrolled by the period's deadline, and
    any office that did report (also one revoked since).
    """
    app = request.app
    settings = app[SETTINGS].stats
    zone = ZoneInfo(settings.timezone)
    sites = await sites_for(request, who)
    got = await app[DB].run(arrivals, period.id)
    deadline = period.deadline(settings.grace_days)
    now = today(request)
    out = []
    for s in sites:
        arrival = got.get(s.node_id)
        if arrival is None:
            if s.status != "active" or s.enrolled is None:
                continue
            if datetime.fromtimestamp(s.enrolled, zone).date() > deadline:
                continue
        first = datetime.fromtimestamp(arrival.first_received, zone).date() if arrival else None
        out.append(
            CompletenessRow(
                office=s.node_id,
                name=s.name,
                org=s.org,
                status=timeliness(period, first, now, settings.grace_days),
                first_received=first,
                revision=arrival.revision if arrival else None,
            )
        )
    return sorted(out, key=lambda r: (r.org, r.name, r.office))


async def reported_periods(request: web.Request, who: Coordinator) -> list[str]:
    """Periods with a report from an office `who` may see, newest first."""
    offices = {s.node_id for s in await sites_for(request, who)}
    return newest_first(await request.app[DB].run(periods, offices))


def choosable(reported: Iterable[str], now: date) -> list[str]:
    """`reported` plus the last closed month and quarter (so the completeness of a
    period nobody reported yet is reachable), newest first."""
    found = set(reported)
    found.add(previous_closed("month", now).id)
    found.add(previous_closed("quarter", now).id)
    return newest_first(found)


async def known_periods(request: web.Request, who: Coordinator) -> list[str]:
    """The reported periods plus the last closed month and quarter, newest first."""
    return choosable(await reported_periods(request, who), today(request))


def newest_first(period_ids: Iterable[str]) -> list[str]:
    """Period ids by end date, newest first; a year before its last quarter before its
    last month."""
    return sorted(period_ids, key=lambda p: _sort_key(parse_period(p)), reverse=True)


def _sort_key(p: Period) -> tuple[int, int]:
    """By end date, then the longer period after the shorter one (so first when reversed)."""
    return (p.end.toordinal(), {"year": 2, "quarter": 1, "month": 0}[p.kind])
