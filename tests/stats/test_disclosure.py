"""Disclosure control: every number perturbed by its cell key, the same everywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.stats.aggregate import PeriodData, Scope, Table, TableSpec, tabulate
from hub.stats.disclosure import DisclosurePolicy, protect
from hub.stats.errors import StatsError
from hub.stats.ptable import PerturbationParams
from protocol.cellkeys import KEY_SPACE

KEYS = st.integers(0, KEY_SPACE - 1)
SMALL = st.integers(0, 12)


def make_table(
    cells: list[list[tuple[int, int]]], margins: list[tuple[int, int]], offices: int = 5
) -> Table:
    """A 2-D table of (count, key) cells; `margins` are the row, column and grand totals."""
    rows, cols = len(cells), len(cells[0])
    return Table(
        period="2026-11",
        scope=Scope.region(),
        spec=TableSpec("cases_new", "gender", "age_band"),
        row_labels=tuple(f"R{i}" for i in range(rows)),
        col_labels=tuple(f"C{j}" for j in range(cols)),
        cells=tuple(tuple(n for n, _ in r) for r in cells),
        row_totals=tuple(n for n, _ in margins[:rows]),
        col_totals=tuple(n for n, _ in margins[rows : rows + cols]),
        total=margins[-1][0],
        cell_keys=tuple(tuple(k for _, k in r) for r in cells),
        row_keys=tuple(k for _, k in margins[:rows]),
        col_keys=tuple(k for _, k in margins[rows : rows + cols]),
        total_key=margins[-1][1],
        cell_offices=tuple(tuple(offices for _ in r) for r in cells),
        row_offices=tuple(offices for _ in range(rows)),
        col_offices=tuple(offices for _ in range(cols)),
        total_offices=offices,
        reporting_offices=offices,
    )


@st.composite
def tables(draw: st.DrawFn) -> Table:
    rows, cols = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pair = st.tuples(SMALL, KEYS)
    cells = [[draw(pair) for _ in range(cols)] for _ in range(rows)]
    margins = [draw(st.tuples(st.integers(0, 60), KEYS)) for _ in range(rows + cols + 1)]
    return make_table(cells, margins)


@settings(max_examples=300, deadline=None)
@given(tables(), st.sampled_from([(3, 1.0, 2), (2, 0.5, 1), (5, 2.0, 4), (4, 1.5, 2)]))
def test_every_number_is_near_the_truth_and_never_small(
    table: Table, params: tuple[int, float, int]
) -> None:
    """|published - true| <= D, no published number in 1..js, and 0 stays 0."""
    d, v, js = params
    t = protect(table, DisclosurePolicy(PerturbationParams(max_noise=d, variance=v, js=js)))
    true = {(r, c): n for r, c, n in _positions(table)}
    for row, col, entry in t.entries():
        truth = true[row, col]
        assert abs(entry.value - truth) <= d
        assert not 1 <= entry.value <= js
        assert entry.value >= 0
        if truth == 0:
            assert entry.value == 0


def _positions(table: Table) -> list[tuple[str | None, str | None, int]]:
    out: list[tuple[str | None, str | None, int]] = []
    for r, label in enumerate(table.row_labels):
        out += [(label, col, table.cells[r][c]) for c, col in enumerate(table.col_labels)]
        out.append((label, None, table.row_totals[r]))
    out += [(None, col, table.col_totals[c]) for c, col in enumerate(table.col_labels)]
    out.append((None, None, table.total))
    return out


def test_the_noise_depends_only_on_count_and_key() -> None:
    """Equal (count, key) pairs publish equally anywhere in a table; other keys may differ."""
    policy = DisclosurePolicy()
    same = (4, 123_456_789)
    t = protect(make_table([[same, (4, 1)], [(0, 0), same]], [same, (7, 5), same, (9, 9), same]))
    assert t.cells[0][0] == t.cells[1][1] == t.row_totals[0] == t.total
    assert t.cells[0][0].value == policy.table.perturb(*same)
    published = {policy.table.perturb(4, k) for k in range(0, KEY_SPACE, KEY_SPACE // 64)}
    assert published <= set(policy.table.distribution(4))  # never 1 or 2, within D
    assert len(published) >= 3  # other keys, other noise


def test_same_number_reads_the_same_in_every_shape_and_scope(data: PeriodData) -> None:
    """A number is one value in 1-D, 2-D margins, transposed tables and equal scopes."""
    policy = DisclosurePolicy()

    def table(
        spec: TableSpec, scope: Scope | None = None
    ) -> dict[tuple[str | None, str | None], int]:
        t = protect(tabulate(data, spec, scope), policy)
        return {(r, c): e.value for r, c, e in t.entries()}

    by_gender = table(TableSpec("cases_new", "gender"))
    gender_age = table(TableSpec("cases_new", "gender", "age_band"))
    age_gender = table(TableSpec("cases_new", "age_band", "gender"))
    by_age = table(TableSpec("cases_new", "age_band"))
    for g in ("female", "male"):
        assert by_gender[g, None] == gender_age[g, None] == age_gender[None, g]
    for a in ("27_39", "under_27"):
        assert by_age[a, None] == gender_age[None, a] == age_gender[a, None]
        assert gender_age["female", a] == age_gender[a, "female"]
    assert table(TableSpec("cases_new"))[None, None] == by_gender[None, None]
    # Diakonie has one office: its organisation and its office are the same cases.
    diakonie = table(TableSpec("cases_new", "gender"), Scope("organisation", "diakonie"))
    office_c = table(TableSpec("cases_new", "gender"), Scope("office", "office-c"))
    assert diakonie == office_c
    by_org = table(TableSpec("cases_new", "organisation", "gender"))
    assert by_org["diakonie", "male"] == office_c["male", None]
    by_office = table(TableSpec("cases_new", "office"))
    assert by_office["office-c", None] == office_c[None, None]


def test_protect_is_deterministic(data: PeriodData) -> None:
    """Protecting the same table twice gives the same numbers (no randomness at publication)."""
    spec = TableSpec("cases_new", "organisation", "nationality")
    assert protect(tabulate(data, spec)) == protect(tabulate(data, spec))


def test_few_offices_flag_uses_the_policy(data: PeriodData) -> None:
    """Non-zero numbers from fewer than min_offices offices are flagged; zeros never are."""
    t = protect(tabulate(data, TableSpec("cases_new", "gender")), DisclosurePolicy(min_offices=3))
    flags = {r: e.few_offices for r, _, e in t.entries()}
    assert flags == {"diverse": False, "female": True, "male": True, "unknown": False, None: False}
    relaxed = protect(
        tabulate(data, TableSpec("cases_new", "gender")), DisclosurePolicy(min_offices=2)
    )
    assert not any(e.few_offices for _, _, e in relaxed.entries())


def test_policy_refuses_nonsense() -> None:
    """Bad thresholds and parameters are refused with a StatsError."""
    with pytest.raises(StatsError, match="min_offices"):
        DisclosurePolicy(min_offices=0)
    with pytest.raises(StatsError, match="js"):
        DisclosurePolicy(PerturbationParams(max_noise=2, js=2))


def test_a_published_zero_is_never_flagged() -> None:
    """A true 1 published as 0 carries no few-offices flag (it would reveal a non-zero)."""
    policy = DisclosurePolicy()
    zero_key = next(k for k in range(0, KEY_SPACE, 2**20) if policy.table.perturb(1, k) == 0)
    three_key = next(k for k in range(0, KEY_SPACE, 2**20) if policy.table.perturb(1, k) == 3)
    t = protect(make_table([[(1, zero_key), (1, three_key)]], [(2, 0), (1, 0), (1, 0), (2, 0)], 1))
    assert (t.cells[0][0].value, t.cells[0][0].few_offices) == (0, False)
    assert (t.cells[0][1].value, t.cells[0][1].few_offices) == (3, True)
