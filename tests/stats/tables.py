"""Helpers for disclosure tests: build tables from matrices and attack protected ones."""

from __future__ import annotations

from fractions import Fraction

from hub.stats.aggregate import Scope, Table, TableSpec
from hub.stats.disclosure import Entry, SuppressedTable

Pos = tuple[int, int]


def make_table(
    cells: list[list[int]],
    offices: list[list[int]] | None = None,
    *,
    one_dim: list[int] | None = None,
) -> Table:
    """A table whose margins are the sums of `cells` (or a 1-D table of `one_dim`)."""
    if one_dim is not None:
        return Table(
            period="2026-11",
            scope=Scope.region(),
            spec=TableSpec("cases_new", "nationality"),
            row_labels=tuple(f"R{i}" for i in range(len(one_dim))),
            col_labels=(),
            cells=tuple(() for _ in one_dim),
            row_totals=tuple(one_dim),
            col_totals=(),
            total=sum(one_dim),
            cell_offices=tuple(() for _ in one_dim),
            row_offices=tuple(5 for _ in one_dim),
            col_offices=(),
            total_offices=5,
            reporting_offices=5,
        )
    rows, cols = len(cells), len(cells[0])
    offices = offices or [[5] * cols for _ in range(rows)]
    return Table(
        period="2026-11",
        scope=Scope.region(),
        spec=TableSpec("cases_new", "nationality", "topic"),
        row_labels=tuple(f"R{i}" for i in range(rows)),
        col_labels=tuple(f"C{j}" for j in range(cols)),
        cells=tuple(tuple(r) for r in cells),
        row_totals=tuple(sum(r) for r in cells),
        col_totals=tuple(sum(r[j] for r in cells) for j in range(cols)),
        total=sum(map(sum, cells)),
        cell_offices=tuple(tuple(r) for r in offices),
        row_offices=tuple(max(r) for r in offices),
        col_offices=tuple(max(r[j] for r in offices) for j in range(cols)),
        total_offices=max(map(max, offices)),
        reporting_offices=5,
    )


def grid(t: Table | SuppressedTable) -> dict[Pos, object]:
    """Every number of a table keyed by position in the (R+1) x (C+1) grid with margins."""
    rows, cols = len(t.row_labels), len(t.col_labels)
    out: dict[Pos, object] = {}
    for r in range(rows):
        for c in range(cols):
            out[r, c] = t.cells[r][c]
        out[r, cols] = t.row_totals[r]
    for c in range(cols):
        out[rows, c] = t.col_totals[c]
    out[rows, cols] = t.total
    return out


def lines(rows: int, cols: int) -> list[tuple[list[Pos], Pos]]:
    """The additive equations of the grid: inner positions and their total."""
    out: list[tuple[list[Pos], Pos]] = []
    if cols:
        out += [([(r, c) for c in range(cols)], (r, cols)) for r in range(rows + 1)]
    if rows:
        out += [([(r, c) for r in range(rows)], (rows, c)) for c in range(cols + 1)]
    return out


def hidden_positions(st: SuppressedTable) -> list[Pos]:
    return sorted(p for p, e in grid(st).items() if isinstance(e, Entry) and e.suppressed)


def pinned_by_equations(st: SuppressedTable) -> set[Pos]:
    """Suppressed positions whose value the published numbers determine exactly.

    Exact rational elimination of the line equations restricted to the unknowns:
    an unknown is determined iff it is a pivot whose reduced row has no other entry.
    """
    rows, cols = len(st.row_labels), len(st.col_labels)
    unknowns = hidden_positions(st)
    col_of = {p: i for i, p in enumerate(unknowns)}
    matrix: list[list[Fraction]] = []
    for inner, total in lines(rows, cols):
        row = [Fraction(0)] * len(unknowns)
        for p in inner:
            if p in col_of:
                row[col_of[p]] += 1
        if total in col_of:
            row[col_of[total]] -= 1
        if any(row):
            matrix.append(row)
    pivots: list[tuple[int, int]] = []
    r = 0
    for c in range(len(unknowns)):
        pivot = next((i for i in range(r, len(matrix)) if matrix[i][c] != 0), None)
        if pivot is None:
            continue
        matrix[r], matrix[pivot] = matrix[pivot], matrix[r]
        lead = matrix[r][c]
        matrix[r] = [x / lead for x in matrix[r]]
        for i in range(len(matrix)):
            if i != r and matrix[i][c] != 0:
                f = matrix[i][c]
                matrix[i] = [a - f * b for a, b in zip(matrix[i], matrix[r], strict=True)]
        pivots.append((r, c))
        r += 1
    return {
        unknowns[c] for r, c in pivots if all(x == 0 for j, x in enumerate(matrix[r]) if j != c)
    }
