"""The one disclosure control of every statistics output (JSON, CSV, dashboard).

`protect(table, policy)` turns an exact `Table` into a `SuppressedTable`; the
renderers accept nothing else. The algorithm (docs/statistics.md has the long
version, with its limits):

1. Primary: every number 1..k-1 (inner cells and totals alike) is suppressed.
   Zero is published: "nobody" reveals nothing about a person.
2. Lines: the table, with its margins, is a grid of (R+1) x (C+1) numbers in
   which every row and every column is an equation "inner numbers add up to
   the total". A line with exactly one suppressed number would give it away,
   so a second one is suppressed: the smallest non-zero unsuppressed number of
   the line, preferring one whose other line needs no new complement.
3. Ones: a line whose total is published and whose suppressed numbers add up
   to their count must consist of ones (zeros are published, so an attacker
   knows every hidden number is at least 1); one more number is suppressed.
4. Cycles: a suppressed number is pinned by the equations exactly when it is a
   bridge of the graph whose nodes are lines and whose edges are the
   suppressed numbers (a line-equation system over a bipartite graph has the
   cycle space as its kernel). For each bridge, the smallest unsuppressed
   number joining its two sides is suppressed, closing a cycle.
5. Steps 2 to 4 repeat until nothing changes. Suppression only grows, so this
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
    while _fix_lines(grid, hidden) or (two_dimensional and _fix_bridge(grid, hidden)):
        pass
    return hidden


def _cost(grid: _Grid, hidden: dict[Pos, Reason], p: Pos, line: int | None) -> tuple[object, ...]:
    """Order of preference among complements: non-zero, small, no cascade, inner, stable."""
    value = grid.values[p]
    cascades = any(
        n != line and sum(1 for q in grid.members(n) if q in hidden) == 0 for n in grid.lines_of[p]
    )
    return (value == 0, value, cascades, grid.is_total(p), p)


def _fix_lines(grid: _Grid, hidden: dict[Pos, Reason]) -> bool:
    changed = False
    for n, (_inner, total) in enumerate(grid.lines):
        members = grid.members(n)
        hidden_here = [p for p in members if p in hidden]
        if not hidden_here:
            continue
        lone = len(hidden_here) == 1
        all_ones = total not in hidden and sum(grid.values[p] for p in hidden_here) <= len(
            hidden_here
        )
        if not (lone or all_ones):
            continue
        candidates = [p for p in members if p not in hidden]
        if not candidates:
            continue
        best = min(candidates, key=lambda p: _cost(grid, hidden, p, n))
        hidden[best] = Reason.SECONDARY
        changed = True
    return changed


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


def _side(edges: list[Pos], start: Node) -> set[Node]:
    adjacency: dict[Node, list[Node]] = {}
    for p in edges:
        a, b = _node_pair(p)
        adjacency.setdefault(a, []).append(b)
        adjacency.setdefault(b, []).append(a)
    seen = {start}
    todo = [start]
    while todo:
        for nxt in adjacency.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _fix_bridge(grid: _Grid, hidden: dict[Pos, Reason]) -> bool:
    edges = sorted(hidden)
    bridges = _bridges(edges)
    if not bridges:
        return False
    bridge = bridges[0]
    rest = [p for p in edges if p != bridge]
    row_node, col_node = _node_pair(bridge)
    side_a = _side(rest, row_node)
    side_b = _side(rest, col_node)
    rows_a = [i for kind, i in side_a if kind == "r"]
    cols_a = [j for kind, j in side_a if kind == "c"]
    rows_b = [i for kind, i in side_b if kind == "r"]
    cols_b = [j for kind, j in side_b if kind == "c"]
    candidates = [(i, j) for i in rows_a for j in cols_b] + [(i, j) for i in rows_b for j in cols_a]
    candidates = [p for p in candidates if p not in hidden]
    if not candidates:  # cannot happen: the bridge's endpoints have degree >= 2 here
        raise StatsError("disclosure control found no cell to protect a suppressed number")
    best = min(candidates, key=lambda p: _cost(grid, hidden, p, None))
    hidden[best] = Reason.SECONDARY
    return True


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
