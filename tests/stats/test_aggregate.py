"""Aggregation: exact tables for three known offices, scopes, filters, revisions."""

from __future__ import annotations

import pytest

from hub.stats.aggregate import (
    PeriodData,
    Scope,
    TableSpec,
    margin_problems,
    newest_revisions,
    restrict_to_organisation,
    tabulate,
)
from hub.stats.cells import CellIdent, dims_text, parse_dims_text
from hub.stats.errors import ReportSetError, TableSpecError
from hub.stats.periods import Period, parse_period
from protocol.cellkeys import KEY_SPACE
from protocol.payloads import StatsCell, StatsReport
from tests.stats.conftest import ORGANISATIONS, REPORTS, F, report

AGES = ("27_39", "40_59", "60_plus", "under_27", "unknown")
GENDERS = ("diverse", "female", "male", "unknown")


def test_region_gender_by_age_is_exact(data: PeriodData) -> None:
    """Every number of the region's gender x age table equals the hand-computed sum."""
    t = tabulate(data, TableSpec("cases_new", "gender", "age_band"))
    assert t.row_labels == GENDERS
    assert t.col_labels == AGES
    assert t.cells == ((0, 0, 0, 0, 0), (4, 5, 0, 2, 0), (3, 0, 0, 9, 0), (0, 0, 0, 0, 0))
    assert t.row_totals == (0, 11, 12, 0)
    assert t.col_totals == (7, 5, 0, 11, 0)
    assert t.total == 23
    assert t.cell_offices == (
        (0, 0, 0, 0, 0),
        (1, 1, 0, 1, 0),
        (1, 0, 0, 2, 0),
        (0, 0, 0, 0, 0),
    )
    assert t.row_offices == (0, 2, 2, 0)
    assert t.col_offices == (1, 1, 0, 2, 0)
    assert t.total_offices == 3
    assert t.reporting_offices == 3


def test_column_order_does_not_change_numbers(data: PeriodData) -> None:
    """Age x gender is the transpose of gender x age (dims are looked up sorted)."""
    a = tabulate(data, TableSpec("cases_new", "gender", "age_band"))
    b = tabulate(data, TableSpec("cases_new", "age_band", "gender"))
    assert b.cells == tuple(zip(*a.cells, strict=True))
    assert (b.row_totals, b.col_totals, b.total) == (a.col_totals, a.row_totals, a.total)


def test_one_dimensional_and_total_tables(data: PeriodData) -> None:
    """A 1-D table holds its values as row totals; a 0-D table only the total."""
    closed = tabulate(data, TableSpec("cases_closed", "closure"))
    assert closed.col_labels == ()
    assert dict(zip(closed.row_labels, closed.row_totals, strict=True)) == {
        "contact_lost": 0,
        "goals_achieved": 5,
        "moved": 1,
        "no_longer_needed": 0,
        "other": 0,
        "referred": 0,
    }
    assert closed.total == 6
    assert closed.row_offices[closed.row_labels.index("goals_achieved")] == 2
    only = tabulate(data, TableSpec("cases_new"))
    assert (only.row_labels, only.total, only.total_offices) == ((), 23, 3)


def test_open_code_list_shows_reported_values_only(data: PeriodData) -> None:
    """Nationality rows are the values some office reported, sorted."""
    t = tabulate(data, TableSpec("cases_new", "nationality"))
    assert t.row_labels == ("SY", "UA")
    assert t.row_totals == (13, 10)
    assert t.row_offices == (2, 2)


def test_scopes_organisation_and_office(data: PeriodData) -> None:
    """An organisation scope sums its offices; an office scope is that office alone."""
    caritas = tabulate(data, TableSpec("cases_new", "gender"), Scope("organisation", "caritas"))
    assert caritas.row_totals == (0, 11, 4, 0)
    assert (caritas.total, caritas.reporting_offices) == (15, 2)
    office_c = tabulate(data, TableSpec("cases_new", "gender"), Scope("office", "office-c"))
    assert office_c.row_totals == (0, 0, 8, 0)
    assert office_c.total == 8
    nobody = tabulate(data, TableSpec("cases_new"), Scope("office", "office-x"))
    assert (nobody.total, nobody.reporting_offices) == (0, 0)


def test_rows_by_organisation_and_office(data: PeriodData) -> None:
    """Grouped rows give one row per organisation or office with region margins."""
    by_org = tabulate(data, TableSpec("cases_new", "organisation", "gender"))
    assert by_org.row_labels == ("caritas", "diakonie")
    assert by_org.cells == ((0, 11, 4, 0), (0, 0, 8, 0))
    assert by_org.row_totals == (15, 8)
    assert by_org.col_totals == (0, 11, 12, 0)
    assert by_org.total == 23
    assert by_org.cell_offices == ((0, 2, 1, 0), (0, 0, 1, 0))
    by_office = tabulate(data, TableSpec("cases_new", "office"))
    assert by_office.row_labels == ("office-a", "office-b", "office-c")
    assert by_office.row_totals == (10, 5, 8)
    assert by_office.row_offices == (1, 1, 1)


def test_organisation_filter_removes_other_offices(data: PeriodData) -> None:
    """After restricting to one organisation no table can reach another's offices."""
    caritas = restrict_to_organisation(data, "caritas")
    assert caritas.offices == ("office-a", "office-b")
    t = tabulate(caritas, TableSpec("cases_new", "office", "gender"))
    assert t.row_labels == ("office-a", "office-b")
    assert t.total == 15
    region = tabulate(caritas, TableSpec("cases_new", "nationality"))
    assert region.row_labels == ("SY", "UA")
    assert region.row_totals == (10, 5)
    leaked = tabulate(caritas, TableSpec("cases_new"), Scope("office", "office-c"))
    assert (leaked.total, leaked.reporting_offices) == (0, 0)
    assert restrict_to_organisation(data, "awo").offices == ()


def test_newest_revision_counts() -> None:
    """Only the highest revision of each office for the period is kept."""
    old = report({("cases_new", ()): 4}, revision=1)
    new = report({("cases_new", ()): 7}, revision=2)
    other_period = StatsReport("2026-10", 9, 0, (StatsCell("cases_new", {}, 99, 0),))
    chosen = newest_revisions(
        [("office-a", new), ("office-a", old), ("office-b", old), ("office-a", other_period)],
        parse_period("2026-11"),
    )
    assert chosen == {"office-a": new, "office-b": old}
    data = PeriodData.from_reports(parse_period("2026-11"), chosen, ORGANISATIONS)
    assert tabulate(data, TableSpec("cases_new")).total == 11


def test_conflicting_reports_under_one_revision_are_refused() -> None:
    """Two different reports with the same revision number are an error, duplicates are not."""
    a = report({("cases_new", ()): 4})
    b = report({("cases_new", ()): 5})
    p = parse_period("2026-11")
    assert newest_revisions([("office-a", a), ("office-a", a)], p) == {"office-a": a}
    with pytest.raises(ReportSetError):
        newest_revisions([("office-a", a), ("office-a", b)], p)


def test_reports_of_another_period_are_refused(period: Period) -> None:
    """Aggregating a quarter never silently mixes in monthly reports."""
    with pytest.raises(ReportSetError):
        PeriodData.from_reports(parse_period("2026-Q4"), REPORTS, ORGANISATIONS)
    with pytest.raises(ReportSetError):
        PeriodData.from_reports(period, REPORTS, {"office-a": "caritas"})


def test_office_without_cells_still_counts_as_reporting(period: Period) -> None:
    """An office whose report is all zeros is a reporting office with zero counts."""
    empty = StatsReport(period.id, 1, 0, ())
    data = PeriodData.from_reports(period, {"office-a": empty}, ORGANISATIONS)
    t = tabulate(data, TableSpec("cases_new", "gender"))
    assert (t.total, t.reporting_offices, t.row_totals) == (0, 1, (0, 0, 0, 0))


@pytest.mark.parametrize(
    ("measure", "rows", "cols"),
    [
        ("no_such_measure", None, None),
        ("cases_new", None, "gender"),
        ("cases_new", "gender", "gender"),
        ("cases_new", "closure", None),
        ("cases_closed", "gender", "channel"),
        ("cases_new", "gender", "office"),
    ],
)
def test_bad_table_specs_are_refused(measure: str, rows: str | None, cols: str | None) -> None:
    """Unknown measures, foreign breakdowns and malformed shapes raise TableSpecError."""
    with pytest.raises(TableSpecError):
        TableSpec(measure, rows, cols)


def test_margin_problems_name_inconsistent_breakdowns() -> None:
    """Additive cells that miss their margin are reported; topics may overlap."""
    assert margin_problems(REPORTS["office-a"]) == ()
    bad = report(
        {
            ("cases_new", ()): 5,
            ("cases_new", (("gender", "female"),)): 3,
            ("cases_new", (("topic", "housing"),)): 4,
            ("cases_new", (("topic", "health"),)): 4,
        }
    )
    assert margin_problems(bad) == ("cases_new: cells by gender do not add up to their margin",)


def test_dims_text_round_trips_and_refuses_non_canonical() -> None:
    """The storage text of a cell's dimensions parses back; unsorted or broken text is refused."""
    dims = (("age_band", "27_39"), ("gender", "female"))
    assert dims_text(dims) == "age_band=27_39;gender=female"
    assert parse_dims_text(dims_text(dims)) == dims
    assert parse_dims_text("") == ()
    for bad in ("gender=female;age_band=27_39", "gender", "gender=", "a=1;a=2"):
        with pytest.raises(TableSpecError):
            parse_dims_text(bad)


def test_coded_rows_equal_reports(period: Period, data: PeriodData) -> None:
    """Indexing (office, cell id, count) rows gives the same tables as indexing reports."""
    keys: dict[int, CellIdent] = {}
    rows: list[tuple[str, int, int, int]] = []
    for office, rep in REPORTS.items():
        for c in rep.cells:
            cid = next((i for i, k in keys.items() if k == c.ident()), len(keys))
            keys[cid] = c.ident()
            rows.append((office, cid, c.count, c.cell_key))
    coded = PeriodData.from_coded_rows(period, rows, keys, ORGANISATIONS)
    spec = TableSpec("cases_new", "gender", "age_band")
    assert tabulate(coded, spec) == tabulate(data, spec)
    with pytest.raises(ReportSetError):
        PeriodData.from_coded_rows(period, [*rows, rows[0]], keys, ORGANISATIONS)


def test_cell_keys_add_up_over_offices(data: PeriodData) -> None:
    """A number's cell key is the sum of its offices' keys mod 2**32, in every shape."""
    female = ("cases_new", (F,))
    keys = [c.cell_key for rep in REPORTS.values() for c in rep.cells if c.ident() == female]
    expected = sum(keys) % KEY_SPACE
    one_dim = tabulate(data, TableSpec("cases_new", "gender"))
    two_dim = tabulate(data, TableSpec("cases_new", "gender", "age_band"))
    row = GENDERS.index("female")
    assert len(keys) == 2
    assert one_dim.row_keys[row] == two_dim.row_keys[row] == expected
    assert two_dim.col_keys == tabulate(data, TableSpec("cases_new", "age_band")).row_keys
    caritas = tabulate(data, TableSpec("cases_new"), Scope("organisation", "caritas"))
    by_org = tabulate(data, TableSpec("cases_new", "organisation"))
    assert by_org.row_keys[by_org.row_labels.index("caritas")] == caritas.total_key


def test_organisation_units_give_the_same_tables_as_offices(
    period: Period, data: PeriodData
) -> None:
    """Sums per organisation (as SQL makes them) tabulate exactly like office rows."""
    keys: dict[CellIdent, int] = {}
    sums: dict[tuple[str, int], list[int]] = {}
    for office, rep in REPORTS.items():
        org = ORGANISATIONS[office]
        for c in rep.cells:
            cid = keys.setdefault(c.ident(), len(keys))
            acc = sums.setdefault((org, cid), [0, 0, 0])
            acc[0] += c.count
            acc[1] += c.cell_key
            acc[2] += 1
    rows = [(org, cid, n, k, m) for (org, cid), (n, k, m) in sorted(sums.items())]
    orgs = PeriodData.from_unit_rows(
        period,
        rows,
        {i: ident for ident, i in keys.items()},
        {"caritas": "caritas", "diakonie": "diakonie"},
        {"caritas": 2, "diakonie": 1},
        level="sums",
    )
    for spec in (
        TableSpec("cases_new", "gender", "age_band"),
        TableSpec("cases_new", "organisation", "nationality"),
        TableSpec("cases_closed", "closure"),
    ):
        for scope in (Scope.region(), Scope("organisation", "caritas")):
            assert tabulate(orgs, spec, scope) == tabulate(data, spec, scope)
    with pytest.raises(ReportSetError, match="office detail"):
        tabulate(orgs, TableSpec("cases_new", "office"))
    assert restrict_to_organisation(orgs, "caritas").units == ("caritas",)
