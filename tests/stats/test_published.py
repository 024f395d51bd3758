"""The hub's read path of published tables (hub/stats/published.py) gives exactly the
numbers of the straightforward path: every office's newest report indexed in Python
(`PeriodData.from_reports`), tabulated and protected. For the region coordinator in
every scope (areas included), for organisation-limited coordinators, for rows by
office, organisation and area: counts, cell keys, contributors and reporting offices."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.stats.aggregate import (
    AREA,
    OFFICE,
    ORGANISATION,
    PeriodData,
    Scope,
    TableSpec,
    groups_read,
    restrict_to_organisation,
    tabulate,
)
from hub.stats.disclosure import DisclosurePolicy, protect
from hub.stats.errors import TableSpecError
from hub.stats.periods import parse_period
from hub.stats.published import protected_tables, read_for
from hub.stats.store import ensure_summed, publish
from hub.storage.db import connect
from hub.storage.engine import Db
from protocol import codes
from tests.stats.hubdata import (
    CUTOFF,
    EMPTY_OFFICE,
    EMPTY_ORG,
    PERIOD,
    Fixture,
    python_sums,
    store_offices,
    stored_sums,
)

PERIOD_OF = parse_period(PERIOD)
POLICY = DisclosurePolicy()


def dims_of(measure: str) -> list[str]:
    breakdown = codes.MEASURES[measure]
    return ([breakdown[0]] if breakdown else []) + sorted(codes.CROSS_DIMENSIONS)


def all_specs(pairs: bool = True) -> list[TableSpec]:
    """Every table shape: totals, by office, organisation and area (alone and by each
    dimension), by each dimension, and (`pairs`) every pair of dimensions; of these,
    the shapes `TableSpec` accepts (the dataset decides which dimensions a measure
    is counted by)."""
    shapes: list[tuple[str, str | None, str | None]] = []
    for measure in codes.MEASURES:
        dims = dims_of(measure)
        shapes += [(measure, group, None) for group in (None, OFFICE, ORGANISATION, AREA)]
        for d in dims:
            shapes += [(measure, d, None)]
            shapes += [(measure, group, d) for group in (OFFICE, ORGANISATION, AREA)]
        if pairs:
            # Both orders for one measure (rows first or columns first in the cell's text).
            crossed = itertools.permutations if measure == "contacts" else itertools.combinations
            shapes += [(measure, a, b) for a, b in crossed(dims, 2)]
    out = []
    for shape in shapes:
        with contextlib.suppress(TableSpecError):
            out.append(TableSpec(*shape))
    return out


@pytest.fixture
def published(tmp_path: Path) -> Iterator[tuple[Db, Fixture]]:
    db = connect(tmp_path / "hub.db")
    fixture = store_offices(db)
    publish(db, PERIOD, cutoff=CUTOFF, now=CUTOFF + 20)
    yield db, fixture
    db.close()


@pytest.fixture
def expected(published: tuple[Db, Fixture]) -> PeriodData:
    """The straightforward path: the reports themselves, indexed office by office."""
    fixture = published[1]
    return PeriodData.from_reports(PERIOD_OF, fixture.reports, fixture.organisations, fixture.areas)


def scopes(fixture: Fixture, org: str | None = None) -> list[Scope]:
    offices = sorted(o for o, g in fixture.organisations.items() if org in (None, g))
    orgs = sorted({g for g in fixture.organisations.values() if org in (None, g)})
    # Every area for everyone: an organisation-limited coordinator's table of an area
    # without their offices is one of zeros from no office.
    areas = sorted(set(fixture.areas.values()))
    return (
        [Scope.region()]
        + [Scope("organisation", g) for g in orgs]
        + [Scope("area", a) for a in areas]
        + [Scope("office", o) for o in offices]
    )


def test_the_fixture_has_what_the_comparison_needs(
    published: tuple[Db, Fixture], expected: PeriodData
) -> None:
    """Several organisations, one office with nothing to count, hundreds of non-zero cells:
    a comparison over it can fail."""
    _, fixture = published
    assert len(set(fixture.organisations.values())) == 4
    assert expected.index[EMPTY_OFFICE] == {}
    cells = sum(len(v) for idx in expected.index.values() for v in idx.values())
    assert cells > 500


def test_sums_written_at_publication_equal_python_sums_of_the_newest_reports(
    published: tuple[Db, Fixture],
) -> None:
    """The publication's per-organisation sums: counts, keys mod 2**32, contributing offices."""
    db, fixture = published
    sums = stored_sums(db, PERIOD)
    assert sums == python_sums(fixture)
    assert not ensure_summed(db, PERIOD)  # made by `publish`, in its transaction
    assert {org for org, _, _ in sums} == set(fixture.organisations.values()) - {EMPTY_ORG}
    units = {(o, fixture.areas[office]) for office, o in fixture.organisations.items()}
    assert {(org, area) for org, area, _ in sums} == units - {(EMPTY_ORG, "Süd")}


def test_region_coordinator_tables_equal_the_python_path_in_every_scope(
    published: tuple[Db, Fixture], expected: PeriodData
) -> None:
    """Exact tables (before protection) and protected tables, every shape and scope."""
    db, fixture = published
    for scope in scopes(fixture):
        pairs = scope.level != "office" or scope.key == "office-1"
        for spec in all_specs(pairs):
            want = tabulate(expected, spec, scope)
            assert tabulate(read_for(db, PERIOD_OF, [spec], scope, None), spec, scope) == want
            (got,) = protected_tables(db, POLICY, PERIOD_OF, None, [spec], scope)
            assert got == protect(want, POLICY), (spec, scope)


def test_organisation_limited_coordinator_sees_exactly_the_restricted_numbers(
    published: tuple[Db, Fixture], expected: PeriodData
) -> None:
    """For each organisation: every shape in the region scope (which is theirs), their
    organisation and their offices equals tabulating the restricted reports."""
    db, fixture = published
    for org in sorted(set(fixture.organisations.values())):
        restricted = restrict_to_organisation(expected, org)
        for scope in scopes(fixture, org):
            specs = all_specs(pairs=scope.level == "region")
            tables = protected_tables(db, POLICY, PERIOD_OF, org, specs, scope)
            for spec, got in zip(specs, tables, strict=True):
                assert got == protect(tabulate(restricted, spec, scope), POLICY), (org, spec)


def test_an_organisation_limited_read_loads_no_other_organisation(
    published: tuple[Db, Fixture],
) -> None:
    """The units read for an organisation-limited coordinator are theirs only, at both levels."""
    db, fixture = published
    for org in set(fixture.organisations.values()):
        mine = {o for o, g in fixture.organisations.items() if g == org}
        by_org = read_for(db, PERIOD_OF, [TableSpec("contacts", "channel")], Scope.region(), org)
        assert set(by_org.organisations.values()) == {org}
        assert set(by_org.areas.values()) == {fixture.areas[o] for o in mine}
        by_office = read_for(db, PERIOD_OF, [TableSpec("contacts", OFFICE)], Scope.region(), org)
        assert set(by_office.units) == mine
        assert set(by_office.organisations.values()) == {org}


def test_rows_by_office_list_every_published_office_with_its_reporting(
    published: tuple[Db, Fixture], expected: PeriodData
) -> None:
    """An office without a non-zero cell is still a row and a reporting office."""
    db, fixture = published
    spec = TableSpec("cases_active", OFFICE, "gender")
    (got,) = protected_tables(db, POLICY, PERIOD_OF, None, [spec], Scope.region())
    assert got.row_labels == tuple(sorted(fixture.organisations))
    assert got.reporting_offices == len(fixture.reports) == 7
    (org_table,) = protected_tables(
        db, POLICY, PERIOD_OF, None, [TableSpec("cases_active", ORGANISATION)], Scope.region()
    )
    assert EMPTY_ORG in org_table.row_labels
    assert org_table.reporting_offices == 7


def test_mixed_table_shapes_in_one_read_equal_one_read_each(
    published: tuple[Db, Fixture],
) -> None:
    """Reading several shapes at once (some by office) gives the tables of reading each."""
    db, _ = published
    specs = [TableSpec("contacts", OFFICE, "channel"), TableSpec("contacts", "channel", "gender")]
    together = protected_tables(db, POLICY, PERIOD_OF, None, specs, Scope.region())
    alone = [protected_tables(db, POLICY, PERIOD_OF, None, [s], Scope.region())[0] for s in specs]
    assert list(together) == alone


def test_groups_read_name_every_group_tabulate_reads(expected: PeriodData) -> None:
    """Tabulating data cut down to `groups_read(spec)` gives the full table: no group missing."""
    for spec in all_specs():
        wanted = groups_read(spec)
        cut = PeriodData(
            period=expected.period,
            organisations=expected.organisations,
            index={
                u: {g: v for g, v in idx.items() if g in wanted}
                for u, idx in expected.index.items()
            },
            unit_offices=expected.unit_offices,
            areas=expected.areas,
        )
        for scope in (Scope.region(), Scope("organisation", "Caritas")):
            assert tabulate(cut, spec, scope) == tabulate(expected, spec, scope), spec


def test_a_period_published_without_reports_reads_as_empty_tables(tmp_path: Path) -> None:
    """No report before the cutoff: tables of zeros from no reporting office."""
    db = connect(tmp_path / "hub.db")
    try:
        publish(db, PERIOD, cutoff=CUTOFF, now=CUTOFF)
        specs = [TableSpec("cases_new"), TableSpec("cases_new", OFFICE, "gender")]
        tables = protected_tables(db, POLICY, PERIOD_OF, None, specs, Scope.region())
    finally:
        db.close()
    assert [t.reporting_offices for t in tables] == [0, 0]
    assert tables[0].total.value == 0
    assert tables[1].row_labels == ()
