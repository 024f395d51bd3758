"""What one coordinator may see: offices, completeness and protected tables.

Every coordinator output (JSON, CSV, dashboard) gets its data here and only
here, and every function takes the `Coordinator` first: an
organisation-limited coordinator's offices are filtered before anything else
(`restrict_to_organisation` on the period's data, the same filter on sites),
so no route can forget it. Tables leave this module only through `protect`.

Numbers exist only for published periods (`publication_of`): before a period's
reporting deadline has passed, every route that would show a number refuses
(`not-published`) and the dashboard shows completeness only.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from hub.context import DB, DEPS, SETTINGS
from hub.errors import Problem
from hub.settings import HubSettings
from hub.stats import publication
from hub.stats.access import Coordinator
from hub.stats.aggregate import (
    OFFICE,
    ORGANISATION,
    PeriodData,
    Scope,
    TableSpec,
    restrict_to_organisation,
    tabulate,
)
from hub.stats.disclosure import DisclosurePolicy, ProtectedTable, protect
from hub.stats.errors import StatsError
from hub.stats.periods import Period, Timeliness, parse_period, previous_closed, timeliness
from hub.stats.ptable import PerturbationParams
from hub.stats.store import (
    Publication,
    arrivals,
    periods,
    published_offices,
    published_organisations,
)
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
)
CHART_MEASURE = "cases_active"
CHART_DIMENSIONS = ("topic", "residence")
CACHE_SIZE = 8


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


# Which units a table needs: organisations summed in SQL (region and
# organisation tables), every office (rows by office), or one office.
Detail = str
ORGANISATIONS_DETAIL: Detail = "organisations"
OFFICES_DETAIL: Detail = "offices"


class PeriodCache:
    """Indexed data of published periods, keyed by (period, detail). A publication
    never changes, so nothing cached can go stale. Bounded; one per app.

    Requests that need the same uncached data while it loads wait for that one
    load instead of each reading the period again (a dashboard opens with
    several requests at once)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, Detail], PeriodData] = OrderedDict()
        self._loading: dict[tuple[str, Detail], asyncio.Future[PeriodData]] = {}

    async def get_or_load(
        self, key: tuple[str, Detail], load: Callable[[], Awaitable[PeriodData]]
    ) -> PeriodData:
        while True:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
            pending = self._loading.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled, not the load
                # The request that was loading went away: load it here.
        future: asyncio.Future[PeriodData] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            data = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: the waiters re-raise it
            raise
        finally:
            del self._loading[key]
        future.set_result(data)
        self._items[key] = data
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return data

    def clear(self) -> None:
        self._items.clear()


PERIOD_CACHE = web.AppKey("stats_period_cache", PeriodCache)
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


def detail_for(spec: TableSpec, scope: Scope) -> Detail:
    """The units `tabulate(spec, scope)` needs."""
    if scope.level == "office":
        return "office:" + scope.key
    return OFFICES_DETAIL if spec.rows == OFFICE else ORGANISATIONS_DETAIL


async def period_data(
    request: web.Request, who: Coordinator, period: Period, detail: Detail = ORGANISATIONS_DETAIL
) -> PeriodData:
    """The published reports of `period` that this coordinator may see, indexed.

    Raises `not-published` before the period's deadline has passed.
    """
    app = request.app
    if await publication_of(request, period) is None:
        raise not_published(app[SETTINGS], period)

    async def load() -> PeriodData:
        loop = asyncio.get_running_loop()
        if detail == ORGANISATIONS_DETAIL:
            rows, idents, per_org = await app[DB].run(published_organisations, period.id)
            orgs = {o: o for o in per_org}
            # Indexing is CPU work: keep it off the loop and off the database thread.
            return await loop.run_in_executor(
                None,
                lambda: PeriodData.from_unit_rows(
                    period, rows, idents, orgs, per_org, level="organisation"
                ),
            )
        office = detail.removeprefix("office:") if detail != OFFICES_DETAIL else None
        office_rows, idents, site_orgs = await app[DB].run(published_offices, period.id, office)
        return await loop.run_in_executor(
            None,
            PeriodData.from_coded_rows,
            period,
            office_rows,
            idents,
            site_orgs,
            list(site_orgs),
        )

    data = await app[PERIOD_CACHE].get_or_load((period.id, detail), load)
    return data if who.org is None else restrict_to_organisation(data, who.org)


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
            ProblemKind.NOT_FOUND, 404, f"no {level} {key!r} among the offices you may see"
        )
    raise Problem(ProblemKind.MALFORMED, 400, "scope must be region, organisation:KEY or office:ID")


def table(
    disclosure: DisclosurePolicy, data: PeriodData, spec: TableSpec, scope: Scope
) -> ProtectedTable:
    return protect(tabulate(data, spec, scope), disclosure)


def overview(disclosure: DisclosurePolicy, data: PeriodData) -> Overview:
    region = Scope.region()
    figures = tuple(table(disclosure, data, TableSpec(m), region) for m in KEY_MEASURES)
    charts = tuple(
        table(disclosure, data, TableSpec(CHART_MEASURE, dim), region) for dim in CHART_DIMENSIONS
    )
    return Overview(data.period.id, figures, charts)


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
    found = await request.app[DB].run(periods, offices)
    return sorted(found, key=lambda p: _sort_key(parse_period(p)), reverse=True)


async def known_periods(request: web.Request, who: Coordinator) -> list[str]:
    """The reported periods plus the last closed month and quarter (so the
    completeness of a period nobody reported yet is reachable), newest first."""
    found = set(await reported_periods(request, who))
    now = today(request)
    found.add(previous_closed("month", now).id)
    found.add(previous_closed("quarter", now).id)
    return sorted(found, key=lambda p: _sort_key(parse_period(p)), reverse=True)


def _sort_key(p: Period) -> tuple[int, int]:
    """By end date, then the longer period after the shorter one (so first when reversed)."""
    return (p.end.toordinal(), {"year": 2, "quarter": 1, "month": 0}[p.kind])
