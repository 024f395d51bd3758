"""Disclosure control: fixed examples and properties over random tables."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.stats.aggregate import PeriodData, TableSpec, tabulate
from hub.stats.disclosure import DisclosurePolicy, Entry, Reason, SuppressedTable, protect
from hub.stats.errors import StatsError
from tests.stats.tables import grid, hidden_positions, lines, make_table, pinned_by_equations


def values(st_: SuppressedTable) -> list[list[int | None]]:
    """The published inner values, None where suppressed."""
    return [[e.value for e in row] for row in st_.cells]


def test_fixture_table_is_published_as_expected(data: PeriodData) -> None:
    """The three-office gender x age table: the 2 and its three complements are hidden."""
    t = protect(tabulate(data, TableSpec("cases_new", "gender", "age_band")))
    assert values(t) == [
        [0, 0, 0, 0, 0],
        [None, 5, 0, None, 0],
        [None, 0, 0, None, 0],
        [0, 0, 0, 0, 0],
    ]
    assert [e.value for e in t.row_totals] == [0, 11, 12, 0]
    assert [e.value for e in t.col_totals] == [7, 5, 0, 11, 0]
    assert t.total.value == 23
    assert t.cells[1][3].reason is Reason.PRIMARY
    assert {t.cells[1][0].reason, t.cells[2][0].reason, t.cells[2][3].reason} == {Reason.SECONDARY}
    # Three offices, min_offices 3: every non-zero number but the grand total is flagged.
    assert [e.few_offices for e in t.row_totals] == [False, True, True, False]
    assert not t.total.few_offices
    assert not t.cells[0][0].few_offices


def test_zero_is_published_and_k_is_configurable() -> None:
    """Zeros stay, 1..k-1 go; with k=1 nothing is suppressed."""
    table = make_table([[0, 4], [5, 6]])
    assert values(protect(table)) == [[0, 4], [5, 6]]
    assert values(protect(table, DisclosurePolicy(k=5))) == [[0, None], [5, None]]
    assert values(protect(make_table([[1, 2]]), DisclosurePolicy(k=1))) == [[1, 2]]


def test_single_small_cell_gets_complements_in_row_and_column() -> None:
    """A lone 1 forces the smallest other number of its row and of its column."""
    t = protect(make_table([[1, 5, 9], [7, 8, 20], [6, 30, 40]]))
    assert values(t) == [[None, None, 9], [None, None, 20], [6, 30, 40]]
    assert all(not e.suppressed for e in (*t.row_totals, *t.col_totals, t.total))


def test_suppressed_total_gets_a_partner_on_the_margin_line() -> None:
    """A small row total is hidden with its cells and another total of the margin column."""
    t = protect(make_table([[1, 1], [10, 20], [30, 40]]))
    hidden = set(hidden_positions(t))
    assert {(0, 0), (0, 1), (0, 2)} <= hidden
    margin_column = [(r, 2) for r in range(4)]
    assert len(hidden & set(margin_column)) >= 2
    assert pinned_by_equations(t) == set()


def test_line_of_ones_is_not_left_pinned() -> None:
    """Two hidden ones under a published total would be 1 and 1: a third number is hidden."""
    t = protect(make_table([], one_dim=[1, 1, 7, 9]))
    assert [e.value for e in t.row_totals] == [None, None, None, 9]
    assert t.total.value == 18


def test_bridge_between_two_blocks_is_closed() -> None:
    """Suppressions that satisfy every line but hang on one bridge cell get a cycle."""
    t = protect(
        make_table(
            [
                [1, 1, 50, 50],
                [1, 1, 60, 60],
                [70, 70, 1, 1],
                [80, 80, 1, 1],
            ]
        )
    )
    assert pinned_by_equations(t) == set()


def test_one_dimensional_small_total_and_zero_dimensional() -> None:
    """A 1-D line keeps at least two hidden numbers; a lone small total is hidden."""
    t = protect(make_table([], one_dim=[0, 2, 0]))
    assert [e.value for e in t.row_totals] == [0, None, 0]
    assert t.total.suppressed
    small = protect(dataclasses.replace(make_table([], one_dim=[]), total=2))
    assert small.total == Entry(value=None, reason=Reason.PRIMARY, few_offices=False)


def test_few_offices_flag_uses_the_policy() -> None:
    """Non-zero numbers from fewer than min_offices offices are flagged; zeros never."""
    table = make_table([[5, 0], [7, 9]], offices=[[1, 0], [2, 4]])
    t = protect(table, DisclosurePolicy(min_offices=3))
    assert [[e.few_offices for e in row] for row in t.cells] == [[True, False], [True, False]]
    relaxed = protect(table, DisclosurePolicy(min_offices=1))
    assert not any(e.few_offices for row in relaxed.cells for e in row)


def test_policy_refuses_nonsense() -> None:
    """k and min_offices must be at least 1."""
    with pytest.raises(StatsError):
        DisclosurePolicy(k=0)
    with pytest.raises(StatsError):
        DisclosurePolicy(min_offices=0)


small_counts = st.one_of(
    st.sampled_from([0, 0, 0, 1, 1, 2, 2, 3]), st.integers(min_value=0, max_value=60)
)


@st.composite
def matrices(draw: st.DrawFn) -> list[list[int]]:
    rows = draw(st.integers(min_value=1, max_value=8))
    cols = draw(st.integers(min_value=1, max_value=8))
    return [[draw(small_counts) for _ in range(cols)] for _ in range(rows)]


def check_protected(table_cells: list[list[int]], st_: SuppressedTable, k: int) -> None:
    """Assert every disclosure property of `st_` against the true numbers."""
    truth = {p: v for p, v in grid(make_table(table_cells)).items() if isinstance(v, int)}
    protected = grid(st_)
    rows, cols = len(st_.row_labels), len(st_.col_labels)
    for p, entry in protected.items():
        assert isinstance(entry, Entry)
        true = truth[p]
        if entry.suppressed:
            assert entry.reason is not None
            if true == 0:
                assert entry.reason is Reason.SECONDARY
        else:
            assert entry.value == true
        if 1 <= true < k:
            assert entry.suppressed
            assert entry.reason is Reason.PRIMARY
    hidden = set(hidden_positions(st_))
    for inner, total in lines(rows, cols):
        in_line = [p for p in (*inner, total) if p in hidden]
        assert len(in_line) != 1, f"{in_line[0] if in_line else None} is the only unknown"
        if in_line and total not in hidden:
            hidden_sum = sum(truth[p] for p in in_line)
            assert hidden_sum > len(in_line), "hidden numbers of a line would all be ones"
    assert pinned_by_equations(st_) == set()


@settings(max_examples=400, deadline=None)
@given(matrices(), st.integers(min_value=2, max_value=5))
def test_random_tables_reveal_no_suppressed_number(cells: list[list[int]], k: int) -> None:
    """Over random tables: no suppressed number is recoverable from the line equations,
    no line is left with one unknown or all ones, published numbers are true, small ones hidden."""
    st_ = protect(make_table(cells), DisclosurePolicy(k=k))
    check_protected(cells, st_, k)


@settings(max_examples=200, deadline=None)
@given(st.lists(small_counts, min_size=1, max_size=12))
def test_random_one_dimensional_tables(values_: list[int]) -> None:
    """1-D: small values hidden, published values true, never a single unknown in the line."""
    st_ = protect(make_table([], one_dim=values_))
    published = [e.value for e in st_.row_totals]
    for true, shown in zip(values_, published, strict=True):
        assert shown is None or shown == true
        if 1 <= true < 3:
            assert shown is None
    unknowns = [e for e in (*st_.row_totals, st_.total) if e.suppressed]
    assert len(unknowns) != 1
    if unknowns and not st_.total.suppressed:
        hidden_sum = sum(v for v, s in zip(values_, published, strict=True) if s is None)
        assert hidden_sum > len(unknowns)
