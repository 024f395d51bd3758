"""Areas as a level like organisations: the coordinator API's `scope=area:KEY` and
`rows=area` publish exactly the protected sums of each area's offices, restricted
for an organisation's coordinator, fixed at publication; migration 0009 keeps every
number published before it; the planning view's rule (cases per office, marker)."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.keyfile import read_keys
from hub.settings import HubSettings
from hub.sites import add_site
from hub.stats.aggregate import (
    AREA,
    OFFICE,
    ORGANISATION,
    PeriodData,
    Scope,
    TableSpec,
    tabulate,
)
from hub.stats.areas import build_plan, german_decimal, median_and_threshold
from hub.stats.cells import parse_dims_text
from hub.stats.disclosure import DisclosurePolicy, Entry, ProtectedTable, protect
from hub.stats.periods import parse_period
from hub.stats.publication import due
from hub.stats.published import protected_tables, protected_tables_by_scope
from hub.stats.store import publish
from hub.storage.db import connect, load_migrations, migrate, schema_version
from hub.storage.engine import Db, SqliteDb
from hub.storage.sites import Site
from support.migrations import Stamp
from support.migrations import migrate as run_migrations
from tests.hub.client import Node, enroll, problem_kind
from tests.hub.engines import hub_db
from tests.stats.hubdata import CUTOFF, PERIOD, python_sums, store_offices, stored_sums
from tests.stats.hubside import (
    ACTIVE,
    NEW,
    PUBLISHED,
    Cells,
    StatsHub,
    make_report,
    published,
)
from tests.stats.hubside import (
    PERIOD as NOVEMBER,
)

# --- the fixture: seven reporting offices of three organisations in four areas ----------


def _res(v: str) -> tuple[tuple[str, str], ...]:
    return (("residence", v),)


def _topic(v: str) -> tuple[tuple[str, str], ...]:
    return (("topic", v),)


def cells(active: int, new: int, topics: dict[str, int], residence: dict[str, int]) -> Cells:
    """A report's cells: active cases (by topic and residence status, whose parts add up
    to the total) and new cases; zeros absent, as a node sends them."""
    assert sum(residence.values()) == active
    out: Cells = {(ACTIVE, ()): active}
    out.update({(ACTIVE, _topic(t)): n for t, n in topics.items()})
    out.update({(ACTIVE, _res(r)): n for r, n in residence.items()})
    if new:
        out[(NEW, ())] = new
    return out


@dataclass(frozen=True)
class Office:
    name: str
    org: str
    area: str
    cells: Cells | None  # None: enrolled, reports nothing
    services: tuple[str, ...] = ("mbe",)
    languages: tuple[str, ...] = ("de",)


OFFICES = (
    Office(
        "Caritas Nord",
        "Caritas",
        "Nord",
        cells(12, 3, {"housing": 5, "debt": 2}, {"toleration": 4, "eu_citizen": 8}),
        ("mbe", "jmd"),
        ("de", "ar"),
    ),
    Office(
        "Diakonie Nord",
        "Diakonie",
        "Nord",
        cells(10, 2, {"housing": 7}, {"toleration": 10}),
        languages=("de", "tr"),
    ),
    Office("AWO Nord", "AWO", "Nord", cells(8, 4, {"debt": 8}, {"eu_citizen": 8})),
    Office(
        "Caritas Süd",
        "Caritas",
        "Süd",
        cells(60, 9, {"housing": 30, "debt": 40}, {"toleration": 25, "eu_citizen": 35}),
    ),
    Office("Caritas West", "Caritas", "West", cells(11, 1, {"debt": 3}, {"eu_citizen": 11})),
    Office("Diakonie West", "Diakonie", "West", cells(9, 0, {"housing": 9}, {"toleration": 9})),
    Office("Diakonie Zentrale", "Diakonie", "", cells(7, 2, {"debt": 7}, {"eu_citizen": 7})),
    Office("AWO Ost", "AWO", "Ost", None),
)
TOPICS = ("debt", "housing")
RESIDENCES = ("eu_citizen", "toleration")


def reports_of(
    area: str | None = None, org: str | None = None, offices: Sequence[Office] = OFFICES
) -> list[Cells]:
    """The reports of the offices in `area` (and of `org`), as the hub got them."""
    return [
        o.cells
        for o in offices
        if o.cells is not None and area in (None, o.area) and org in (None, o.org)
    ]


def true_count(reports: Iterable[Cells], ident: tuple[str, tuple[tuple[str, str], ...]]) -> int:
    return sum(r.get(ident, 0) for r in reports)


async def enroll_office(hub: StatsHub, office: Office) -> Node:
    db = hub_db(hub.settings)
    try:
        new = add_site(
            db,
            read_keys(hub.settings.key_path),
            hub.settings,
            name=office.name,
            org=office.org,
            services=list(office.services),
            languages=list(office.languages),
            area=office.area,
            now=hub.clock.now(),
            secret=secrets.randbits(60),
        )
    finally:
        db.close()
    return await enroll(hub.http, new.code)


async def area_offices(hub: StatsHub, *, publish: bool = True) -> dict[str, Node]:
    """Enroll OFFICES, submit their November reports and (`publish`) pass the deadline."""
    nodes = {}
    for office in OFFICES:
        nodes[office.name] = node = await enroll_office(hub, office)
        if office.cells is not None:
            resp = await hub.submit(node, make_report(office.cells))
            assert resp.status == 200, await resp.text()
    if publish:
        hub.clock.t = PUBLISHED
    return nodes


async def table(hub: StatsHub, query: str, org: str | None = None) -> dict[str, Any]:
    doc = await hub.get_json(f"/coordinator/v1/tables?period={NOVEMBER}&{query}", hub.token(org))
    assert isinstance(doc, dict)
    return doc


def rows(doc: dict[str, Any]) -> dict[str, int]:
    """Row label -> published row total of a table's JSON."""
    return {
        label: entry["value"]
        for label, entry in zip(doc["row_labels"], doc["row_totals"], strict=True)
    }


def total(doc: dict[str, Any]) -> int:
    return int(doc["total"]["value"])


# --- API -------------------------------------------------------------------------------


def test_the_fixture_makes_areas_worth_comparing() -> None:
    """Areas of several organisations, an organisation in several areas, an office
    without area and an area without a report: the true counts differ per area."""
    areas = {o.area for o in OFFICES}
    assert areas == {"Nord", "Süd", "West", "Ost", ""}
    assert len({o.org for o in OFFICES if o.area == "Nord"}) == 3
    assert len({o.area for o in OFFICES if o.org == "Caritas"}) == 3
    counts = {a: true_count(reports_of(a), (ACTIVE, ())) for a in areas}
    assert counts == {"Nord": 30, "Süd": 60, "West": 20, "Ost": 0, "": 7}


async def test_rows_by_area_publish_each_areas_protected_sum(stats_hub: StatsHub) -> None:
    """rows=area: one row per area with a report, each the published number of exactly
    its offices' reports (true sum plus the noise of their cell keys), "" for no area."""
    await area_offices(stats_hub)
    for measure in (ACTIVE, NEW):
        doc = await table(stats_hub, f"measure={measure}&rows=area")
        assert rows(doc) == {
            a: published(reports_of(a), (measure, ())) for a in ("Nord", "Süd", "West", "")
        }
        assert total(doc) == published(reports_of(), (measure, ()))
        assert doc["reporting_offices"] == 7
    doc = await table(stats_hub, f"measure={ACTIVE}&rows=area&cols=residence")
    for area, line in zip(doc["row_labels"], doc["cells"], strict=True):
        for col, entry in zip(doc["col_labels"], line, strict=True):
            assert entry["value"] == published(reports_of(area), (ACTIVE, _res(col)))
    # The protection is at work: published area numbers are not all the true counts.
    truth = {a: true_count(reports_of(a), (ACTIVE, ())) for a in ("Nord", "Süd", "West", "")}
    assert rows(doc) != truth


async def test_an_area_scope_is_the_same_numbers_as_its_row(stats_hub: StatsHub) -> None:
    """scope=area:KEY sums the area's offices in every shape; its total is the area's row
    of rows=area (same records, same number), by organisation each org's offices there."""
    await area_offices(stats_hub)
    by_area = rows(await table(stats_hub, f"measure={ACTIVE}&rows=area"))
    for area in ("Nord", "Süd", "West", ""):
        mine = reports_of(area)
        doc = await table(stats_hub, f"measure={ACTIVE}&rows=topic&scope=area:{area}")
        assert doc["scope"] == {"level": "area", "key": area}
        assert total(doc) == by_area[area] == published(mine, (ACTIVE, ()))
        assert rows(doc)["debt"] == published(mine, (ACTIVE, _topic("debt")))
        assert rows(doc)["housing"] == published(mine, (ACTIVE, _topic("housing")))
        orgs = rows(await table(stats_hub, f"measure={ACTIVE}&rows=organisation&scope=area:{area}"))
        assert orgs == {
            org: published(reports_of(area, org), (ACTIVE, ()))
            for org in sorted({o.org for o in OFFICES if o.area == area and o.cells})
        }
        res = rows(await table(stats_hub, f"measure={ACTIVE}&rows=residence&scope=area:{area}"))
        assert {r: res[r] for r in RESIDENCES} == {
            r: published(mine, (ACTIVE, _res(r))) for r in RESIDENCES
        }


async def test_an_area_without_report_is_a_table_of_no_office(stats_hub: StatsHub) -> None:
    """Ost has an office but no report: its table exists, from 0 reporting offices, 0."""
    await area_offices(stats_hub)
    doc = await table(stats_hub, f"measure={ACTIVE}&scope=area:Ost")
    assert doc["reporting_offices"] == 0
    assert total(doc) == 0
    assert "Ost" not in rows(await table(stats_hub, f"measure={ACTIVE}&rows=area"))


async def test_organisation_limited_coordinator_sees_only_its_offices_areas(
    stats_hub: StatsHub,
) -> None:
    """A Diakonie coordinator: rows=area lists Diakonie's areas with Diakonie's offices'
    numbers only; another area of the region is 404, as an unknown one."""
    await area_offices(stats_hub)
    doc = await table(stats_hub, f"measure={ACTIVE}&rows=area", org="Diakonie")
    assert rows(doc) == {
        a: published(reports_of(a, "Diakonie"), (ACTIVE, ())) for a in ("Nord", "West", "")
    }
    assert doc["reporting_offices"] == 3
    nord = await table(stats_hub, f"measure={ACTIVE}&rows=organisation&scope=area:Nord", "Diakonie")
    assert rows(nord) == {"Diakonie": published(reports_of("Nord", "Diakonie"), (ACTIVE, ()))}
    assert total(nord) == published(reports_of("Nord", "Diakonie"), (ACTIVE, ()))
    assert nord["reporting_offices"] == 1
    token = stats_hub.token("Diakonie")
    for scope in ("area:Süd", "area:Ost", "area:Nirgendwo"):
        resp = await stats_hub.http.request(
            "GET",
            f"/coordinator/v1/tables?period={NOVEMBER}&measure={ACTIVE}&scope={scope}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 404, scope
        assert problem_kind(await resp.json()) == "not-found"


async def test_an_unknown_area_is_404_for_the_region_too(stats_hub: StatsHub) -> None:
    """scope=area:unknown is 404 not-found; a scope of no known level stays 400."""
    await area_offices(stats_hub)
    token = stats_hub.token()
    for scope, status in (("area:unknown", 404), ("gebiet:Nord", 400)):
        resp = await stats_hub.http.request(
            "GET",
            f"/coordinator/v1/tables?period={NOVEMBER}&measure={ACTIVE}&scope={scope}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == status, scope


async def test_areas_are_fixed_at_publication(stats_hub: StatsHub) -> None:
    """An office moved to another area after publication moves no published number;
    its old area stays reachable for that period."""
    await area_offices(stats_hub)
    before = rows(await table(stats_hub, f"measure={ACTIVE}&rows=area"))
    db = hub_db(stats_hub.settings)
    try:
        db.execute("UPDATE sites SET area = 'Nord' WHERE name = 'Caritas Süd'")
    finally:
        db.close()
    assert rows(await table(stats_hub, f"measure={ACTIVE}&rows=area")) == before
    sued = await table(stats_hub, f"measure={ACTIVE}&scope=area:Süd")
    assert total(sued) == published(reports_of("Süd"), (ACTIVE, ()))


# --- the read path ---------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path: Path) -> Iterable[Db]:
    """hubdata's offices (areas across organisations), published."""
    db = connect(tmp_path / "hub.db")
    store_offices(db)
    publish(db, PERIOD, cutoff=CUTOFF, now=CUTOFF + 20)
    yield db
    db.close()


def test_one_read_for_many_areas_equals_one_read_each(stored: Db) -> None:
    """protected_tables_by_scope (the planning view's one read) gives every area's tables
    exactly as a read of that area alone, for the region and for each organisation."""
    period = parse_period(PERIOD)
    policy = DisclosurePolicy()
    specs = [
        TableSpec("cases_active", AREA),
        TableSpec("cases_active", "topic"),
        TableSpec("contacts", ORGANISATION, "channel"),
    ]
    scopes = [Scope.region()] + [Scope("area", a) for a in ("Nord", "Süd", "", "Ost")]
    for org in (None, "Caritas", "Diakonie"):
        together = protected_tables_by_scope(stored, policy, period, org, specs, scopes)
        for scope in scopes:
            alone = protected_tables(stored, policy, period, org, specs, scope)
            assert together[scope] == alone, (org, scope)
    by_office = [TableSpec("cases_new", OFFICE)]
    with pytest.raises(ValueError, match="one by one"):
        protected_tables_by_scope(stored, policy, period, None, by_office, scopes)


# --- migration 0009 --------------------------------------------------------------------

AREAS_MIGRATION = 9


def database_at(path: Path, version: int) -> SqliteDb:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    before = [m for m in load_migrations() if m.version <= version]
    run_migrations(conn, before, stamp=Stamp.UNIX_SECONDS, clock=lambda: 0.0)
    return SqliteDb(conn)


def publish_as_0008(db: Db, period: str, cutoff: int) -> None:
    """What `publish` recorded under migration 0008: reports with their organisation,
    sums per organisation."""
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO stats_publications (period, published, cutoff, reports, summed) "
        "VALUES (?, ?, ?, 0, 1)",
        (period, cutoff, cutoff),
    )
    db.execute(
        "INSERT INTO stats_published_reports (period, report_id, office, org) "
        "SELECT ?, r.id, r.office, s.org FROM stats_reports r "
        "JOIN sites s ON s.node_id = r.office "
        "WHERE r.period = ? AND r.received < ? AND r.dataset_version >= 2 "
        "AND r.revision = (SELECT max(o.revision) FROM stats_reports o "
        "  WHERE o.office = r.office AND o.period = r.period AND o.received < ? "
        "  AND o.dataset_version >= 2)",
        (period, period, cutoff, cutoff),
    )
    db.execute(
        "INSERT INTO stats_published_sums (period, cell_id, org, count, cell_key, offices) "
        "SELECT p.period, c.cell_id, p.org, sum(c.count), sum(c.cell_key) % 4294967296, "
        "count(*) FROM stats_published_reports p "
        "JOIN stats_report_cells c ON c.report_id = p.report_id "
        "WHERE p.period = ? GROUP BY p.org, c.cell_id",
        (period,),
    )
    db.execute("COMMIT")


def test_migration_0009_keeps_every_number_published_before_it(
    tmp_path: Path, hub_settings: HubSettings
) -> None:
    """A period published under 0008: after 0009 its offices get their directory area,
    its sums are made per (organisation, area) at the first read, and every table reads
    the same protected numbers as from the old sums per organisation (same counts, same
    keys, so the same noise)."""
    db = database_at(tmp_path / "hub.db", AREAS_MIGRATION - 1)
    try:
        fixture = store_offices(db)
        publish_as_0008(db, PERIOD, CUTOFF)
        old_sums = db.execute(
            "SELECT org, cell_id, count, cell_key, offices FROM stats_published_sums"
        ).fetchall()
        old_offices = dict(
            db.execute("SELECT org, count(*) FROM stats_published_reports GROUP BY org").fetchall()
        )
        idents = {
            i: (measure, parse_dims_text(dims))
            for i, measure, dims in db.execute("SELECT id, measure, dims FROM stats_cells")
        }
        applied = migrate(db)
        assert applied[0] == AREAS_MIGRATION
        assert schema_version(db) == applied[-1]
        recorded = dict(db.execute("SELECT office, area FROM stats_published_reports").fetchall())
        assert recorded == fixture.areas
        assert db.execute("SELECT summed FROM stats_publications").fetchall() == [(0,)]

        period = parse_period(PERIOD)
        assert due(db, period, hub_settings, CUTOFF + 99) is not None  # sums at first read
        assert stored_sums(db, PERIOD) == python_sums(fixture)
        per_org: dict[tuple[str, int], list[int]] = {}
        for org, cell_id, count, key, offices in db.execute(
            "SELECT org, cell_id, count, cell_key, offices FROM stats_published_sums"
        ):
            held = per_org.setdefault((org, cell_id), [0, 0, 0])
            held[0] += count
            held[1] = (held[1] + key) % 4294967296
            held[2] += offices
        assert {(o, c): (n, k, m) for o, c, n, k, m in old_sums} == {
            k: tuple(v) for k, v in per_org.items()
        }

        # The numbers the hub published before 0009, from its sums per organisation.
        before = PeriodData.from_unit_rows(
            period,
            [(o, c, n, k, m) for o, c, n, k, m in sorted(old_sums)],
            idents,
            {o: o for o in old_offices},
            old_offices,
            level="sums",
        )
        policy = DisclosurePolicy()
        orgs = sorted(old_offices)
        specs = [
            TableSpec("cases_active"),
            TableSpec("cases_active", ORGANISATION, "residence"),
            TableSpec("contacts", "channel", "gender"),
            TableSpec("cases_new", "nationality"),
        ]
        for scope in [Scope.region()] + [Scope("organisation", o) for o in orgs]:
            after = protected_tables(db, policy, period, None, specs, scope)
            assert after == tuple(protect(tabulate(before, s, scope), policy) for s in specs)
    finally:
        db.close()


# --- the planning rule -----------------------------------------------------------------


def test_cases_per_office_read_with_one_german_decimal() -> None:
    """12.25 -> 12,3; thousands with a dot; whole numbers keep their ,0."""
    assert german_decimal(12.25) == "12,3"
    assert german_decimal(10 / 3) == "3,3"
    assert german_decimal(1234.56) == "1.234,6"
    assert german_decimal(7.0) == "7,0"


def test_the_marker_is_above_one_and_a_half_times_the_median() -> None:
    """Median over the areas with a number (not "ohne Gebiet"), threshold 1.5 x median;
    an area without report has no number and is not marked."""
    assert median_and_threshold([10.0, 12.0, 60.0]) == (12.0, 18.0)
    assert median_and_threshold([]) == (None, None)
    assert median_and_threshold([0.0, 0.0]) == (0.0, None)

    def by_area(measure: str, values: dict[str, int]) -> ProtectedTable:
        """A published table by area with these published row totals."""
        return ProtectedTable(
            period=NOVEMBER,
            scope=Scope.region(),
            spec=TableSpec(measure, AREA),
            policy=DisclosurePolicy(),
            row_labels=tuple(values),
            col_labels=(),
            cells=((),) * len(values),
            row_totals=tuple(Entry(v) for v in values.values()),
            col_totals=(),
            total=Entry(sum(values.values())),
            reporting_offices=7,
        )

    def sites(area: str, n: int) -> list[Site]:
        return [
            Site(f"{area}-{i}", f"{area} {i}", "Caritas", (), (), area, "active", 0)
            for i in range(n)
        ]

    active = by_area(ACTIVE, {"": 90, "Nord": 30, "Süd": 60, "West": 20})
    new = by_area(NEW, {"": 1, "Nord": 2, "Süd": 3, "West": 4})
    offices = {a: sites(a, n) for a, n in (("Nord", 3), ("Süd", 1), ("West", 2), ("Ost", 1))}
    offices[""] = sites("", 1)
    reporting = {"Nord": 3, "Süd": 1, "West": 2, "": 1}
    keys = ["Nord", "Ost", "Süd", "West", ""]
    plan = build_plan(keys, offices, reporting, (active, new), {})
    by = {r.key: r for r in plan.rows}
    assert plan.median == 10.0
    assert plan.threshold == 15.0
    assert [k for k, r in by.items() if r.many] == ["Süd"]
    assert by[""].per_office == 90.0
    assert not by[""].many  # offices without an area are no place to plan for
    assert by["Ost"].active is None
    assert by["Ost"].per_office_text == "–"
    assert by["Nord"].per_office_text == "10,0"
    assert by["Süd"].new == Entry(3)
