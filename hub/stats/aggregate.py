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
* Every count travels with its cell key: the sum modulo KEY_SPACE of the keys
  the offices sent for that cell, which is the key of the records behind the
  number (protocol.cellkeys). The disclosure control perturbs by it.
* The units summed are offices, or an organisation's offices in one area whose
  sums the database made at publication (`PeriodData.from_unit_rows`, level
  `sums`): sums of counts, keys and contributors add up the same either way, so
  region, organisation and area tables are the same numbers from both; office
  scopes and rows by office need office units.
* Every unit lies in one organisation and one area (`""` for offices without
  one), both as recorded at publication: a table of an area sums exactly the
  units of that area, so its numbers are the same records (and so the same
  published numbers) wherever they appear.

No table leaves the hub unprotected: renderers take the `ProtectedTable` that
`hub.stats.disclosure.protect` makes from a `Table`, never a `Table`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from hub.stats.cells import (
    NON_ADDITIVE_DIMS,
    CellIdent,
    closed_codes,
    dimension_allowed,
    pair_allowed,
)
from hub.stats.errors import ReportSetError, TableSpecError
from hub.stats.periods import Period
from protocol import codes
from protocol.cellkeys import KEY_SPACE
from protocol.payloads import StatsReport

# Pseudo-dimensions: rows that group offices instead of cases.
OFFICE = "office"
ORGANISATION = "organisation"
AREA = "area"
GROUP_DIMS = frozenset({OFFICE, ORGANISATION, AREA})
# The area of offices the directory gives none: a group (and scope key) of its own.
NO_AREA = ""

Level = Literal["region", "organisation", "area", "office"]
# A number being summed: (count, cell key sum, offices with a non-zero count).
Sums = tuple[int, int, int]
# The cells of one measure by the same dimensions: (measure, dimension names).
CellGroup = tuple[str, tuple[str, ...]]
# Per unit: cell group -> dimension values -> sums.
UnitIndex = dict[CellGroup, dict[tuple[str, ...], Sums]]
UnitLevel = Literal["office", "sums"]


def unit_id(org: str, area: str) -> str:
    """The name of the unit of `org`'s offices in `area` (level `sums`): unique per
    pair, whatever the names hold."""
    return json.dumps([org, area], ensure_ascii=False)


@dataclass(frozen=True)
class TableSpec:
    """A table request: a measure, optionally broken down by rows and then columns.

    `rows` may be a dimension or `office` / `organisation` / `area` (one row per
    group of offices); `cols` is always a dimension and needs `rows`.
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
        pair = (str(self.rows), self.cols) if row_is_dim and self.cols is not None else None
        if pair is not None and not pair_allowed(self.measure, *pair):
            raise TableSpecError("these two dimensions are not counted together")

    @property
    def grouped(self) -> bool:
        return self.rows in GROUP_DIMS


def groups_read(spec: TableSpec) -> frozenset[CellGroup]:
    """The cell groups `tabulate` reads for `spec` (in any scope): data holding only
    these gives the same table, so the hub loads no other cells for it."""
    names: set[tuple[str, ...]] = {()}
    if spec.cols is not None:
        names.add((spec.cols,))
    if spec.rows is not None and not spec.grouped:
        names.add((spec.rows,))
        if spec.cols is not None:
            names.add(tuple(sorted((spec.rows, spec.cols))))
    return frozenset((spec.measure, n) for n in names)


@dataclass(frozen=True)
class Scope:
    """Which offices a table sums: the region, one organisation, one area or one office.

    The area key `""` (`NO_AREA`) is the offices without an area; every other
    level but the region needs a key.
    """

    level: Level
    key: str = ""

    @classmethod
    def region(cls) -> Scope:
        return cls("region")

    def __post_init__(self) -> None:
        if self.level == "region" and self.key:
            raise TableSpecError("a region scope takes no key")
        if self.level in ("organisation", "office") and not self.key:
            raise TableSpecError("an organisation or office scope needs a key")


@dataclass(frozen=True)
class Table:
    """Exact aggregate counts. Shape: `cells[r][c]`; a 1-D table has no columns
    (its values are the `row_totals`), a 0-D table has only `total`.

    `*_keys` hold each number's cell key; `*_offices`, per number, how many
    offices contributed a non-zero count.
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
    cell_keys: tuple[tuple[int, ...], ...]
    row_keys: tuple[int, ...]
    col_keys: tuple[int, ...]
    total_key: int
    cell_offices: tuple[tuple[int, ...], ...]
    row_offices: tuple[int, ...]
    col_offices: tuple[int, ...]
    total_offices: int
    reporting_offices: int


@dataclass(frozen=True)
class PeriodData:
    """The counted reports of one period, indexed for tabulation by unit: an office,
    or (`level == "sums"`) an organisation's offices in one area, summed in SQL."""

    period: Period
    organisations: Mapping[str, str]  # unit -> organisation
    index: Mapping[str, UnitIndex] = field(repr=False)
    unit_offices: Mapping[str, int] = field(default_factory=dict)  # unit -> reporting offices
    level: UnitLevel = "office"
    # unit -> area; a unit missing here is in NO_AREA (data made without areas).
    areas: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_reports(
        cls,
        period: Period,
        reports: Mapping[str, StatsReport],
        organisations: Mapping[str, str],
        areas: Mapping[str, str] | None = None,
    ) -> PeriodData:
        """Index newest reports (office -> report); every report must be of `period`.
        `areas` (office -> area) defaults to every office in NO_AREA."""
        for report in reports.values():
            if report.period != period.id:
                raise ReportSetError("a report of another period was handed to aggregation")
        rows = (
            (office, c.ident(), c.count, c.cell_key)
            for office, report in reports.items()
            for c in report.cells
        )
        return cls.from_rows(period, rows, organisations, offices=reports.keys(), areas=areas)

    @classmethod
    def from_rows(
        cls,
        period: Period,
        rows: Iterable[tuple[str, CellIdent, int, int]],
        organisations: Mapping[str, str],
        offices: Iterable[str] = (),
        areas: Mapping[str, str] | None = None,
    ) -> PeriodData:
        """Index cells given as (office, identity, count, cell key).

        `offices` names offices that reported but may have no non-zero cell.
        """
        ids: dict[CellIdent, int] = {}
        coded = [
            (office, ids.setdefault(ident, len(ids)), count, key)
            for office, ident, count, key in rows
        ]
        keys = {i: ident for ident, i in ids.items()}
        return cls.from_coded_rows(period, coded, keys, organisations, offices, areas)

    @classmethod
    def from_coded_rows(
        cls,
        period: Period,
        rows: Iterable[tuple[str, int, int, int]],
        keys: Mapping[int, CellIdent],
        organisations: Mapping[str, str],
        offices: Iterable[str] = (),
        areas: Mapping[str, str] | None = None,
    ) -> PeriodData:
        """Index office cells given as (office, cell id, count, cell key) with a cell
        id -> identity table: the shape of the hub's `stats_report_cells` and
        `stats_cells` tables (docs/statistics.md)."""
        units = ((o, cell_id, n, key, 1 if n else 0) for o, cell_id, n, key in rows)
        reporting = dict.fromkeys(offices, 1)  # an office is one reporting office
        return cls.from_unit_rows(
            period, units, keys, organisations, reporting, level="office", areas=areas
        )

    @classmethod
    def from_unit_rows(
        cls,
        period: Period,
        rows: Iterable[tuple[str, int, int, int, int]],
        keys: Mapping[int, CellIdent],
        organisations: Mapping[str, str],
        unit_offices: Mapping[str, int],
        *,
        level: UnitLevel,
        areas: Mapping[str, str] | None = None,
    ) -> PeriodData:
        """Index (unit, cell id, count, cell key sum, contributors) rows.

        `unit_offices` names every unit with its number of reporting offices
        (also units without a non-zero cell); `areas` gives units' areas (a unit
        not in it is in NO_AREA). Splitting each identity once per id rather than
        once per row keeps this fast.
        """
        split: dict[int, tuple[tuple[str, tuple[str, ...]], tuple[str, ...]]] = {
            i: ((measure, tuple(d for d, _ in dims)), tuple(v for _, v in dims))
            for i, (measure, dims) in keys.items()
        }
        index: dict[str, UnitIndex] = {u: {} for u in unit_offices}
        unit_index: UnitIndex = {}
        current = None
        for unit, cell_id, count, key, contributors in rows:
            if unit != current:
                unit_index = index.setdefault(unit, {})
                current = unit
            if count < 0:
                raise ReportSetError("a cell count is negative")
            group, values = split[cell_id]
            by_values = unit_index.get(group)
            if by_values is None:
                by_values = unit_index[group] = {}
            if values in by_values:
                raise ReportSetError("a cell appears twice for one unit")
            if count:
                by_values[values] = (count, key % KEY_SPACE, contributors)
        missing = [u for u in index if u not in organisations]
        if missing:
            raise ReportSetError(f"{len(missing)} reporting unit(s) have no organisation")
        orgs = {u: organisations[u] for u in index}
        counted = {u: unit_offices.get(u, 1) for u in index}
        placed = {u: (areas or {}).get(u, NO_AREA) for u in index}
        return cls(
            period=period,
            organisations=orgs,
            index=index,
            unit_offices=counted,
            level=level,
            areas=placed,
        )

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(sorted(self.index))

    @property
    def offices(self) -> tuple[str, ...]:
        """The reporting offices (units of office-level data)."""
        if self.level != "office":
            raise ReportSetError("office detail was not loaded for this table")
        return self.units

    def units_in(self, scope: Scope) -> tuple[str, ...]:
        if scope.level == "region":
            return self.units
        if scope.level == "organisation":
            return tuple(u for u in self.units if self.organisations[u] == scope.key)
        if scope.level == "area":
            return tuple(u for u in self.units if self.area_of(u) == scope.key)
        return (scope.key,) if scope.key in self.offices else ()

    def area_of(self, unit: str) -> str:
        return self.areas.get(unit, NO_AREA)


def restrict_to_organisation(data: PeriodData, organisation: str) -> PeriodData:
    """The same period with only `organisation`'s offices: what an organisation-limited
    coordinator may see. Every table computed from the result lacks other offices entirely."""
    keep = {u: i for u, i in data.index.items() if data.organisations[u] == organisation}
    return PeriodData(
        period=data.period,
        organisations={u: organisation for u in keep},
        index=keep,
        unit_offices={u: data.unit_offices[u] for u in keep},
        level=data.level,
        areas={u: data.area_of(u) for u in keep},
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
    data: PeriodData, units: Iterable[str], measure: str, names: tuple[str, ...]
) -> dict[tuple[str, ...], Sums]:
    """Per value tuple: summed count, cell key (mod KEY_SPACE) and contributors."""
    out: dict[tuple[str, ...], Sums] = {}
    for unit in units:
        for values, (count, key, contributors) in (
            data.index[unit].get((measure, names), {}).items()
        ):
            held = out.get(values)
            if held is None:
                out[values] = (count, key, contributors)
            else:
                out[values] = (
                    held[0] + count,
                    (held[1] + key) % KEY_SPACE,
                    held[2] + contributors,
                )
    return out


_NONE: Sums = (0, 0, 0)


def _labels(
    data: PeriodData, units: Iterable[str], measure: str, dim: str, other: str | None
) -> tuple[str, ...]:
    fixed = closed_codes(measure, dim)
    if fixed is not None:
        return fixed
    # Open code list: the values some office reported, in the margin or a crossing.
    seen: set[str] = set()
    keys = [(dim,)] if other is None else [(dim,), tuple(sorted((dim, other)))]
    for unit in units:
        idx = data.index[unit]
        for names in keys:
            pos = names.index(dim)
            seen.update(v[pos] for v in idx.get((measure, names), {}))
    return tuple(sorted(seen))


@dataclass
class _Lines:
    """Numbers of a table as they are collected: counts, keys, contributors."""

    counts: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    offices: list[int] = field(default_factory=list)

    def add(self, sums: Sums) -> None:
        self.counts.append(sums[0])
        self.keys.append(sums[1])
        self.offices.append(sums[2])


def tabulate(data: PeriodData, spec: TableSpec, scope: Scope | None = None) -> Table:
    """Sum the counted reports of the units in `scope` (default: region) into a table."""
    scope = scope or Scope.region()
    units = data.units_in(scope)
    m = spec.measure
    total = _sum(data, units, m, ()).get((), _NONE)
    reporting = sum(data.unit_offices[u] for u in units)
    col_dim = spec.cols
    cols = _labels(data, units, m, col_dim, None) if col_dim else ()
    col_lines = _Lines()
    if col_dim is not None:
        col_sums = _sum(data, units, m, (col_dim,))
        for c in cols:
            col_lines.add(col_sums.get((c,), _NONE))

    rows: tuple[str, ...] = ()
    row_lines = _Lines()
    cells: list[_Lines] = []
    if spec.rows is None:
        pass
    elif spec.grouped:
        if spec.rows == OFFICE and data.level != "office":
            raise ReportSetError("office detail was not loaded for this table")
        groups: dict[str, list[str]] = {}
        for unit in units:
            if spec.rows == OFFICE:
                label = unit
            elif spec.rows == AREA:
                label = data.area_of(unit)
            else:
                label = data.organisations[unit]
            groups.setdefault(label, []).append(unit)
        rows = tuple(sorted(groups))
        for label in rows:
            row_lines.add(_sum(data, groups[label], m, ()).get((), _NONE))
            line = _Lines()
            if col_dim is not None:
                s = _sum(data, groups[label], m, (col_dim,))
                for c in cols:
                    line.add(s.get((c,), _NONE))
            cells.append(line)
    else:
        row_dim = spec.rows
        rows = _labels(data, units, m, row_dim, col_dim)
        s = _sum(data, units, m, (row_dim,))
        for r in rows:
            row_lines.add(s.get((r,), _NONE))
        pair = _sum(data, units, m, tuple(sorted((row_dim, col_dim)))) if col_dim else {}
        row_first = col_dim is None or row_dim < col_dim
        for r in rows:
            line = _Lines()
            if col_dim is not None:
                for c in cols:
                    line.add(pair.get((r, c) if row_first else (c, r), _NONE))
            cells.append(line)
    return Table(
        period=data.period.id,
        scope=scope,
        spec=spec,
        row_labels=rows,
        col_labels=cols,
        cells=tuple(tuple(line.counts) for line in cells),
        row_totals=tuple(row_lines.counts),
        col_totals=tuple(col_lines.counts),
        total=total[0],
        cell_keys=tuple(tuple(line.keys) for line in cells),
        row_keys=tuple(row_lines.keys),
        col_keys=tuple(col_lines.keys),
        total_key=total[1],
        cell_offices=tuple(tuple(line.offices) for line in cells),
        row_offices=tuple(row_lines.offices),
        col_offices=tuple(col_lines.offices),
        total_offices=total[2],
        reporting_offices=reporting,
    )


def margin_problems(report: StatsReport) -> tuple[str, ...]:
    """Where a report's cells do not add up to the margins it sent (additive dimensions only).

    The hub may refuse or flag such a report; the texts name measures and
    dimensions, never counts.
    """
    counts: dict[CellIdent, int] = {c.ident(): c.count for c in report.cells}
    sums: dict[tuple[CellIdent, str], int] = {}
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
