"""The one disclosure control of every statistics output (JSON, CSV, dashboard).

`protect(table, policy)` turns an exact `Table` into a `ProtectedTable`; the
renderers accept nothing else. The method is the cell key method (Destatis for
the Zensus 2022, ONS for Census 2021; docs/statistics.md has the long version
with its parameters, guarantees and limits):

* every published number is its true count plus noise read from the
  perturbation table (`hub.stats.ptable`) at the number's cell key;
* the cell key is the sum of the keys of the records behind the number, so the
  noise depends only on those records: the same number reads the same in every
  table, shape, scope and format, and repeating or rearranging requests gains
  an attacker nothing;
* no published number is 1..js (default 1 or 2), totals included; 0 stays 0.

Rejected: suppression (what this module did before). Suppression decides per
table, but a coordinator can request any table, and the tables of one period are
linked: solving them together recomputed hundreds of suppressed numbers. Noise
that belongs to the records, not to the table, cannot be averaged away by
asking for the same number in other tables: every table shows the same noisy
value for the same records. Different numbers that share records (a margin and
its cells) carry independent noise, and combining them narrows a small number
only a little; tests/stats/test_attack.py measures how little
(docs/statistics.md). Nothing is suppressed any more: with noise on every
number, a suppressed one would only tell a reader where the small numbers are.

Flags: a non-zero published number built from fewer than `min_offices` offices
is flagged (the flag tells the reader it may describe few offices). A published
0 is never flagged, whatever is behind it: "0, from few offices" would say the
true number is not 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from hub.stats.aggregate import Scope, Table, TableSpec
from hub.stats.errors import StatsError
from hub.stats.ptable import PerturbationParams, PerturbationTable, build_table


@dataclass(frozen=True)
class DisclosurePolicy:
    """The published perturbation parameters and the few-offices flag threshold.

    The perturbation table is built once from the parameters, here.
    """

    params: PerturbationParams = field(default_factory=PerturbationParams)
    min_offices: int = 3
    table: PerturbationTable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.min_offices <= 1000:
            raise StatsError("disclosure min_offices must be between 1 and 1000")
        object.__setattr__(self, "table", build_table(self.params))


@dataclass(frozen=True)
class Entry:
    """One published number (perturbed) and whether it comes from few offices."""

    value: int
    few_offices: bool = False


@dataclass(frozen=True)
class ProtectedTable:
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


def protect(table: Table, policy: DisclosurePolicy | None = None) -> ProtectedTable:
    """Perturb every number of `table` by its cell key and flag numbers of few offices."""
    policy = policy or DisclosurePolicy()
    perturb = policy.table.perturb
    least = policy.min_offices

    made: dict[tuple[int, bool], Entry] = {}  # equal entries are one object (frozen)

    def entry(count: int, key: int, offices: int) -> Entry:
        value = perturb(count, key)
        # A flag on a published 0 would tell that the true number is not 0.
        few = value > 0 and 0 < offices < least
        found = made.get((value, few))
        if found is None:
            found = made[(value, few)] = Entry(value=value, few_offices=few)
        return found

    def line(
        counts: tuple[int, ...], keys: tuple[int, ...], offices: tuple[int, ...]
    ) -> tuple[Entry, ...]:
        return tuple(entry(*x) for x in zip(counts, keys, offices, strict=True))

    return ProtectedTable(
        period=table.period,
        scope=table.scope,
        spec=table.spec,
        policy=policy,
        row_labels=table.row_labels,
        col_labels=table.col_labels,
        cells=tuple(
            line(counts, keys, offices)
            for counts, keys, offices in zip(
                table.cells, table.cell_keys, table.cell_offices, strict=True
            )
        ),
        row_totals=line(table.row_totals, table.row_keys, table.row_offices),
        col_totals=line(table.col_totals, table.col_keys, table.col_offices),
        total=entry(table.total, table.total_key, table.total_offices),
        reporting_offices=table.reporting_offices,
    )
