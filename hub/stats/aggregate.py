"""Aggregation of office reports for one period into tables.

Decisions (docs/statistics.md explains them at length):

* Only reports of exactly the requested period are aggregated. Quarters and
  years are reports of their own, computed by the node from its cases: a stock
  like `cases_active` or a distinct count like `cases_new` per quarter cannot be
  recovered from monthly figures, and summing months double-counts.
* A cell absent from a report is 0. A node sends every non-zero cell, margins
  included (the total `{}` and every lower-order combination); table totals are
  these margins, never sums of the inner cells, because topics overlap (a case
  has several topics) and their cells add up to more than the total.
* For each office, only its newest revision counts (`newest_revisions`).
* `contributors` counts, per cell, the offices whose own count is non-zero.

No table leaves the hub unprotected: renderers take the `SuppressedTable` that
`hub.stats.disclosure.protect` makes from a `Table`, never a `Table`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from hub.stats.cellkeys import (
    NON_ADDITIVE_DIMS,
    CellKey,
    closed_codes,
    dimension_allowed,
)
from hub.stats.errors import ReportSetError, TableSpecError
from hub.stats.periods import Period
from protocol import codes
from protocol.payloads import StatsReport

# Pseudo-dimensions: rows that group offices instead of cases.
OFFICE = "office"
ORGANISATION = "organisation"
GROUP_DIMS = frozenset({OFFICE, ORGANISATION})

Level = Literal["region", "organisation", "office"]
# Per office: (measure, dimension names) -> dimension values -> count.
OfficeIndex = dict[tuple[str, tuple[str, ...]], dict[tuple[str, ...], int]]


@dataclass(frozen=True)
class TableSpec:
    """A table request: a measure, optionally broken down by rows and then columns.

    `rows` may be a dimension or `office` / `organisation` (one row per group of
    offices); `cols` is always a dimension and needs `rows`.
    """

    measure: str
    rows: str | None = None
    cols: str | None = None

    def __post_init__(self) -> None:
        if self.measure not in codes.MEASURES:
            raise TableSpecError("unknown measure")
        if self.cols is not None and self.rows is None:
            raise TableSpecError("a table with columns needs rows")
        if self.rows is not None and self.rows == self.cols:
            raise TableSpecError("rows and columns must be different dimensions")
        row_is_dim = self.rows is not None and self.rows not in GROUP_DIMS
        if row_is_dim and not dimension_allowed(self.measure, str(self.rows)):
            raise TableSpecError("row dimension not available for this measure")
        if self.cols is not None and not dimension_allowed(self.measure, self.cols):
            raise TableSpecError("column dimension not available for this measure")

    @property
    def grouped(self) -> bool:
        return self.rows in GROUP_DIMS


@dataclass(frozen=True)
class Scope:
    """Which offices a table sums: the region, one organisation or one office."""

    level: Level
    key: str = ""

    @classmethod
    def region(cls) -> Scope:
        return cls("region")

    def __post_init__(self) -> None:
        if (self.level == "region") != (self.key == ""):
            raise TableSpecError("an organisation or office scope needs a key, a region none")


@dataclass(frozen=True)
class Table:
    """Exact aggregate counts. Shape: `cells[r][c]`; a 1-D table has no columns
    (its values are the `row_totals`), a 0-D table has only `total`.

    `*_offices` hold, per number, how many offices contributed a non-zero count.
    """

    period: str
    scope: Scope
    spec: TableSpec
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    cells: tuple[tuple[int, ...], ...]
    row_totals: tuple[int, ...]
    col_totals: tuple[int, ...]
    total: int
    cell_offices: tuple[tuple[int, ...], ...]
    row_offices: tuple[int, ...]
    col_offices: tuple[int, ...]
    total_offices: int
    reporting_offices: int


@dataclass(frozen=True)
class PeriodData:
    """The newest report of each office for one period, indexed for tabulation."""

    period: Period
    organisations: Mapping[str, str]
    index: Mapping[str, OfficeIndex] = field(repr=False)

    @classmethod
    def from_reports(
        cls, period: Period, reports: Mapping[str, StatsReport], organisations: Mapping[str, str]
    ) -> PeriodData:
        """Index newest reports (office -> report); every report must be of `period`."""
        for report in reports.values():
            if report.period != period.id:
                raise ReportSetError("a report of another period was handed to aggregation")
        rows = (
            (office, c.key(), c.count) for office, report in reports.items() for c in report.cells
        )
        return cls.from_rows(period, rows, organisations, offices=reports.keys())

    @classmethod
    def from_rows(
        cls,
        period: Period,
        rows: Iterable[tuple[str, CellKey, int]],
        organisations: Mapping[str, str],
        offices: Iterable[str] = (),
    ) -> PeriodData:
        """Index cells given as (office, key, count).

        `offices` names offices that reported but may have no non-zero cell.
        """
        ids: dict[CellKey, int] = {}
        coded = [(office, ids.setdefault(key, len(ids)), count) for office, key, count in rows]
        keys = {i: key for key, i in ids.items()}
        return cls.from_coded_rows(period, coded, keys, organisations, offices)

    @classmethod
    def from_coded_rows(
        cls,
        period: Period,
        rows: Iterable[tuple[str, int, int]],
        keys: Mapping[int, CellKey],
        organisations: Mapping[str, str],
        offices: Iterable[str] = (),
    ) -> PeriodData:
        """Index cells given as (office, cell id, count) with a cell id -> key table:
        the shape of the hub's `report_cells` and `cell_keys` tables (docs/statistics.md).

        Splitting each key once per id rather than once per row keeps this fast.
        """
        split: dict[int, tuple[tuple[str, tuple[str, ...]], tuple[str, ...]]] = {
            i: ((measure, tuple(d for d, _ in dims)), tuple(v for _, v in dims))
            for i, (measure, dims) in keys.items()
        }
        index: dict[str, OfficeIndex] = {o: {} for o in offices}
        office_index: OfficeIndex = {}
        current = None
        for office, cell_id, count in rows:
            if office != current:
                office_index = index.setdefault(office, {})
                current = office
            if count < 0:
                raise ReportSetError("a cell count is negative")
            group, values = split[cell_id]
            by_values = office_index.get(group)
            if by_values is None:
                by_values = office_index[group] = {}
            if values in by_values:
                raise ReportSetError("a cell appears twice for one office")
            if count:
                by_values[values] = count
        missing = [o for o in index if o not in organisations]
        if missing:
            raise ReportSetError(f"{len(missing)} reporting office(s) have no organisation")
        orgs = {o: organisations[o] for o in index}
        return cls(period=period, organisations=orgs, index=index)

    @property
    def offices(self) -> tuple[str, ...]:
        return tuple(sorted(self.index))

    def offices_in(self, scope: Scope) -> tuple[str, ...]:
        if scope.level == "region":
            return self.offices
        if scope.level == "organisation":
            return tuple(o for o in self.offices if self.organisations[o] == scope.key)
        return (scope.key,) if scope.key in self.index else ()


def restrict_to_organisation(data: PeriodData, organisation: str) -> PeriodData:
    """The same period with only `organisation`'s offices: what an organisation-limited
    coordinator may see. Every table computed from the result lacks other offices entirely."""
    keep = {o: i for o, i in data.index.items() if data.organisations[o] == organisation}
    return PeriodData(
        period=data.period,
        organisations={o: organisation for o in keep},
        index=keep,
    )


def newest_revisions(
    submissions: Iterable[tuple[str, StatsReport]], period: Period
) -> dict[str, StatsReport]:
    """Office -> its highest revision for `period`; other periods are ignored.

    The same revision twice (an at-least-once redelivery) is fine if identical;
    two different reports under one revision number are refused.
    """
    newest: dict[str, StatsReport] = {}
    for office, report in submissions:
        if report.period != period.id:
            continue
        held = newest.get(office)
        if held is None or report.revision > held.revision:
            newest[office] = report
        elif report.revision == held.revision and report != held:
            raise ReportSetError("two different reports carry the same revision")
    return newest


def _sum(
    data: PeriodData, offices: Iterable[str], measure: str, names: tuple[str, ...]
) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
    sums: dict[tuple[str, ...], int] = {}
    contributors: dict[tuple[str, ...], int] = {}
    for office in offices:
        for values, count in data.index[office].get((measure, names), {}).items():
            sums[values] = sums.get(values, 0) + count
            contributors[values] = contributors.get(values, 0) + 1
    return sums, contributors


def _labels(
    data: PeriodData, offices: Iterable[str], measure: str, dim: str, other: str | None
) -> tuple[str, ...]:
    fixed = closed_codes(measure, dim)
    if fixed is not None:
        return fixed
    # Open code list: the values some office reported, in the margin or a crossing.
    seen: set[str] = set()
    keys = [(dim,)] if other is None else [(dim,), tuple(sorted((dim, other)))]
    for office in offices:
        idx = data.index[office]
        for names in keys:
            pos = names.index(dim)
            seen.update(v[pos] for v in idx.get((measure, names), {}))
    return tuple(sorted(seen))


def tabulate(data: PeriodData, spec: TableSpec, scope: Scope | None = None) -> Table:
    """Sum the newest reports of the offices in `scope` (default: region) into a table."""
    scope = scope or Scope.region()
    offices = data.offices_in(scope)
    m = spec.measure
    total_sums, total_contrib = _sum(data, offices, m, ())
    total, total_offices = total_sums.get((), 0), total_contrib.get((), 0)
    if spec.rows is None:
        return Table(
            period=data.period.id,
            scope=scope,
            spec=spec,
            row_labels=(),
            col_labels=(),
            cells=(),
            row_totals=(),
            col_totals=(),
            total=total,
            cell_offices=(),
            row_offices=(),
            col_offices=(),
            total_offices=total_offices,
            reporting_offices=len(offices),
        )
    col_dim = spec.cols
    cols = _labels(data, offices, m, col_dim, None) if col_dim else ()
    if col_dim is not None:
        col_sums, col_contrib = _sum(data, offices, m, (col_dim,))
        col_totals = tuple(col_sums.get((c,), 0) for c in cols)
        col_offices = tuple(col_contrib.get((c,), 0) for c in cols)
    else:
        col_totals, col_offices = (), ()

    rows: tuple[str, ...]
    cells: list[tuple[int, ...]] = []
    cell_offices: list[tuple[int, ...]] = []
    row_totals: list[int] = []
    row_offices: list[int] = []
    if spec.grouped:
        groups: dict[str, list[str]] = {}
        for office in offices:
            label = office if spec.rows == OFFICE else data.organisations[office]
            groups.setdefault(label, []).append(office)
        rows = tuple(sorted(groups))
        for label in rows:
            s, k = _sum(data, groups[label], m, ())
            row_totals.append(s.get((), 0))
            row_offices.append(k.get((), 0))
            if col_dim is not None:
                s, k = _sum(data, groups[label], m, (col_dim,))
                cells.append(tuple(s.get((c,), 0) for c in cols))
                cell_offices.append(tuple(k.get((c,), 0) for c in cols))
    else:
        row_dim = spec.rows
        assert row_dim is not None  # narrowed by spec.rows is None above
        rows = _labels(data, offices, m, row_dim, col_dim)
        s, k = _sum(data, offices, m, (row_dim,))
        row_totals = [s.get((r,), 0) for r in rows]
        row_offices = [k.get((r,), 0) for r in rows]
        if col_dim is not None:
            names = tuple(sorted((row_dim, col_dim)))
            s, k = _sum(data, offices, m, names)
            row_first = names[0] == row_dim
            for r in rows:
                keys = [(r, c) if row_first else (c, r) for c in cols]
                cells.append(tuple(s.get(key, 0) for key in keys))
                cell_offices.append(tuple(k.get(key, 0) for key in keys))
    if col_dim is None:
        cells = [() for _ in rows]
        cell_offices = [() for _ in rows]
    return Table(
        period=data.period.id,
        scope=scope,
        spec=spec,
        row_labels=rows,
        col_labels=cols,
        cells=tuple(cells),
        row_totals=tuple(row_totals),
        col_totals=col_totals,
        total=total,
        cell_offices=tuple(cell_offices),
        row_offices=tuple(row_offices),
        col_offices=col_offices,
        total_offices=total_offices,
        reporting_offices=len(offices),
    )


def margin_problems(report: StatsReport) -> tuple[str, ...]:
    """Where a report's cells do not add up to the margins it sent (additive dimensions only).

    The hub may refuse or flag such a report; the texts name measures and
    dimensions, never counts.
    """
    counts: dict[CellKey, int] = {c.key(): c.count for c in report.cells}
    sums: dict[tuple[CellKey, str], int] = {}
    for (measure, dims), count in counts.items():
        for i, (dim, _) in enumerate(dims):
            if dim in NON_ADDITIVE_DIMS:
                continue
            parent = (measure, dims[:i] + dims[i + 1 :])
            sums[(parent, dim)] = sums.get((parent, dim), 0) + count
    problems = {
        f"{parent[0]}: cells by {dim} do not add up to their margin"
        for (parent, dim), total in sums.items()
        if counts.get(parent, 0) != total
    }
    return tuple(sorted(problems))
