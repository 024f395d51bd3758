"""The one disclosure control of every statistics output (JSON, CSV, dashboard).

`protect(table, policy)` turns an exact `Table` into a `SuppressedTable`; the
renderers accept nothing else. The algorithm (docs/statistics.md has the long
version, with its limits):

1. Primary: every number 1..k-1 (inner cells and totals alike) is suppressed.
   Zero is published: "nobody" reveals nothing about a person.
2. Cycles: the table with its margins is a grid of (R+1) x (C+1) numbers in
   which every row and every column is an equation "inner numbers add up to
   the total". A suppressed number is pinned by these equations exactly when
   it is a bridge of the graph whose nodes are the lines and whose edges are
   the suppressed numbers (over a bipartite graph the kernel of the line
   equations is its cycle space). A line with a single unknown is the simplest
   bridge. For each bridge, the cheapest rectangle with the bridge as one
   corner (other row and column, margins included) is suppressed: it puts the
   bridge on a 4-cycle. Cheapest: fewest zeros, then the smallest sum of newly
   suppressed numbers, then fewest totals, then fewest new numbers.
   A 1-D table is a single line: it needs 0 or at least 2 unknowns.
3. Ones: a line whose total is published and whose suppressed numbers add up
   to their count must consist of ones (zeros are published, so an attacker
   knows every hidden number is at least 1); its smallest published non-zero
   number is suppressed too.
4. Steps 2 and 3 repeat until nothing changes. Suppression only grows, so this
   terminates; the worst case suppresses everything.

Flags: a non-zero number built from fewer than `min_offices` offices is
flagged (it is published; the flag tells the reader it may describe few
offices). The primary/secondary reason is kept for audits and tests;
renderers must not show it, since knowing which hidden numbers are primary
(1..k-1) narrows them down.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from hub.stats.aggregate import Scope, Table, TableSpec
from hub.stats.errors import StatsError

Pos = tuple[int, int]


@dataclass(frozen=True)
class DisclosurePolicy:
    """`k`: numbers 1..k-1 are suppressed; `min_offices`: fewer contributors are flagged."""

    k: int = 3
    min_offices: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 1000:
            raise StatsError("disclosure k must be between 1 and 1000")
        if not 1 <= self.min_offices <= 1000:
            raise StatsError("disclosure min_offices must be between 1 and 1000")


class Reason(enum.Enum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True)
class Entry:
    """One published position: a value, or None with the reason it is withheld."""

    value: int | None
    reason: Reason | None = None
    few_offices: bool = False

    @property
    def suppressed(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class SuppressedTable:
    """A table after disclosure control; the only kind of table an output may render."""

    period: str
    scope: Scope
    spec: TableSpec
    policy: DisclosurePolicy
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    cells: tuple[tuple[Entry, ...], ...]
    row_totals: tuple[Entry, ...]
    col_totals: tuple[Entry, ...]
    total: Entry
    reporting_offices: int

    def entries(self) -> Iterator[tuple[str | None, str | None, Entry]]:
        """Every number as (row label, column label, entry); None labels mean "total"."""
        for r, label in enumerate(self.row_labels):
            for c, col in enumerate(self.col_labels):
                yield label, col, self.cells[r][c]
            yield label, None, self.row_totals[r]
        for c, col in enumerate(self.col_labels):
            yield None, col, self.col_totals[c]
        yield None, None, self.total


class _Grid:
    """The table with its margins as an (R+1) x (C+1) grid; index R / C is the total."""

    def __init__(self, table: Table) -> None:
        self.rows = len(table.row_labels)
        self.cols = len(table.col_labels)
        self.values: dict[Pos, int] = {}
        self.offices: dict[Pos, int] = {}
        for r in range(self.rows):
            for c in range(self.cols):
                self.values[r, c] = table.cells[r][c]
                self.offices[r, c] = table.cell_offices[r][c]
            self.values[r, self.cols] = table.row_totals[r]
            self.offices[r, self.cols] = table.row_offices[r]
        for c in range(self.cols):
            self.values[self.rows, c] = table.col_totals[c]
            self.offices[self.rows, c] = table.col_offices[c]
        self.values[self.rows, self.cols] = table.total
        self.offices[self.rows, self.cols] = table.total_offices
        self.lines: list[tuple[tuple[Pos, ...], Pos]] = []
        if self.cols:
            for r in range(self.rows + 1):
                inner = tuple((r, c) for c in range(self.cols))
                self.lines.append((inner, (r, self.cols)))
        if self.rows:
            for c in range(self.cols + 1):
                inner = tuple((r, c) for r in range(self.rows))
                self.lines.append((inner, (self.rows, c)))
        self.lines_of: dict[Pos, list[int]] = {p: [] for p in self.values}
        for n, (inner, total) in enumerate(self.lines):
            for p in (*inner, total):
                self.lines_of[p].append(n)

    def members(self, n: int) -> tuple[Pos, ...]:
        inner, total = self.lines[n]
        return (*inner, total)

    def is_total(self, p: Pos) -> bool:
        return p[0] == self.rows or p[1] == self.cols


def _suppress(grid: _Grid, k: int) -> dict[Pos, Reason]:
    hidden = {p: Reason.PRIMARY for p, v in grid.values.items() if 1 <= v < k}
    two_dimensional = grid.rows > 0 and grid.cols > 0
    while True:
        if two_dimensional:
            # In 2-D a line with one unknown is a special case of a bridge.
            bridges = _bridges(sorted(hidden))
            if bridges:
                _add_rectangle(grid, hidden, bridges[0])
                continue
        elif _fix_lines(grid, hidden, lone=True):
            continue
        if not _fix_lines(grid, hidden, lone=False):
            return hidden


def _cost(grid: _Grid, p: Pos) -> tuple[bool, int, bool, Pos]:
    """Order of preference among complements: non-zero, small, inner, stable."""
    value = grid.values[p]
    return (value == 0, value, grid.is_total(p), p)


def _fix_lines(grid: _Grid, hidden: dict[Pos, Reason], *, lone: bool) -> bool:
    """Add a complement to each line with a lone unknown (`lone`) or made of ones."""
    changed = False
    for n, (_inner, total) in enumerate(grid.lines):
        members = grid.members(n)
        hidden_here = [p for p in members if p in hidden]
        if not hidden_here:
            continue
        if lone:
            needed = len(hidden_here) == 1
        else:
            hidden_sum = sum(grid.values[p] for p in hidden_here)
            needed = total not in hidden and hidden_sum <= len(hidden_here)
        candidates = [p for p in members if p not in hidden]
        if needed and candidates:
            hidden[min(candidates, key=lambda p: _cost(grid, p))] = Reason.SECONDARY
            changed = True
    return changed


def _add_rectangle(grid: _Grid, hidden: dict[Pos, Reason], p: Pos) -> None:
    """Hide the cheapest rectangle with `p` as a corner, so `p` lies on a 4-cycle.

    Any other row i2 and column j2 (margins included) give the corners
    (i, j2), (i2, j), (i2, j2); the cost is the sum of the corners not yet
    hidden, avoiding zeros, then totals, then the number of new cells.
    """
    i, j = p
    best: tuple[tuple[int, int, int, int, Pos], list[Pos]] | None = None
    for i2 in range(grid.rows + 1):
        if i2 == i:
            continue
        for j2 in range(grid.cols + 1):
            if j2 == j:
                continue
            new = [q for q in ((i, j2), (i2, j), (i2, j2)) if q not in hidden]
            values = [grid.values[q] for q in new]
            key = (
                values.count(0),
                sum(values),
                sum(grid.is_total(q) for q in new),
                len(new),
                (i2, j2),
            )
            if best is None or key < best[0]:
                best = (key, new)
    if best is None:  # cannot happen: a 2-D grid has at least two rows and two columns
        raise StatsError("disclosure control found no cell to protect a suppressed number")
    for q in best[1]:
        hidden[q] = Reason.SECONDARY


Node = tuple[str, int]


def _node_pair(p: Pos) -> tuple[Node, Node]:
    return ("r", p[0]), ("c", p[1])


def _bridges(edges: list[Pos]) -> list[Pos]:
    """Bridges of the bipartite graph rows-columns whose edges are `edges` (iterative Tarjan)."""
    adjacency: dict[Node, list[tuple[Node, int]]] = {}
    for e, p in enumerate(edges):
        a, b = _node_pair(p)
        adjacency.setdefault(a, []).append((b, e))
        adjacency.setdefault(b, []).append((a, e))
    order: dict[Node, int] = {}
    low: dict[Node, int] = {}
    found: list[Pos] = []
    for root in sorted(adjacency):
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack: list[tuple[Node, int, Iterator[tuple[Node, int]]]] = [
            (root, -1, iter(adjacency[root]))
        ]
        while stack:
            node, via, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    if low[node] > order[parent]:
                        found.append(edges[via])
                continue
            nxt, e = step
            if e == via:
                continue
            if nxt in order:
                low[node] = min(low[node], order[nxt])
            else:
                order[nxt] = low[nxt] = len(order)
                stack.append((nxt, e, iter(adjacency[nxt])))
    return sorted(found)


def protect(table: Table, policy: DisclosurePolicy | None = None) -> SuppressedTable:
    """Apply primary and secondary suppression and the few-offices flag to `table`."""
    policy = policy or DisclosurePolicy()
    grid = _Grid(table)
    hidden = _suppress(grid, policy.k)

    def entry(p: Pos) -> Entry:
        offices = grid.offices[p]
        few = 0 < offices < policy.min_offices
        if p in hidden:
            return Entry(value=None, reason=hidden[p], few_offices=few)
        return Entry(value=grid.values[p], few_offices=few)

    rows, cols = grid.rows, grid.cols
    return SuppressedTable(
        period=table.period,
        scope=table.scope,
        spec=table.spec,
        policy=policy,
        row_labels=table.row_labels,
        col_labels=table.col_labels,
        cells=tuple(tuple(entry((r, c)) for c in range(cols)) for r in range(rows)),
        row_totals=tuple(entry((r, cols)) for r in range(rows)),
        col_totals=tuple(entry((rows, c)) for c in range(cols)),
        total=entry((rows, cols)),
        reporting_offices=table.reporting_offices,
    )
