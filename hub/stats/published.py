"""A published period's protected tables, read from the database for just the tables asked.

`protected_tables(db, policy, period, org, specs, scope)` is what every
coordinator route calls (on the hub's database thread, through
hub/stats/view.py) and what bench/stats.py times. It reads only the cells the
tables need (`groups_read`) at the level they need:

* region, organisation and area tables (also rows by organisation or area):
  the period's sums per (organisation, area), written once when the period was
  published (`stats_published_sums`, hub/stats/store.py `publish`): a few rows
  per number, whatever the number of offices;
* tables of one office, or with a row per office: those offices' published
  cells of the needed cells only (a primary-key lookup per report and cell).

Nothing is cached: a request costs a few small indexed reads. An
organisation-limited coordinator's reads select their organisation's rows in
SQL, and `restrict_to_organisation` is applied again before tabulating, so no
other office's number is ever loaded for them. An area scope reads that area's
rows only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hub.stats.aggregate import (
    OFFICE,
    CellGroup,
    PeriodData,
    Scope,
    TableSpec,
    groups_read,
    restrict_to_organisation,
    tabulate,
    unit_id,
)
from hub.stats.cells import CellIdent, parse_dims_text
from hub.stats.disclosure import DisclosurePolicy, ProtectedTable, protect
from hub.stats.periods import Period
from hub.storage.engine import Db


def group_cells(db: Db, groups: Iterable[CellGroup]) -> dict[int, CellIdent]:
    """The interned cells of these (measure, dimension names) groups: id -> identity.

    Dimension names are sorted in a cell's text (`a=x;b=y`), so a group's cells
    are a range of the (measure, dims) index: those starting with its first
    name, with as many `;` as names after the first, holding the second.
    """
    found: dict[int, CellIdent] = {}
    for measure, names in sorted(set(groups)):
        if not names:
            query = "SELECT id, dims FROM stats_cells WHERE measure = ? AND dims = ''"
            params: tuple[str | int, ...] = (measure,)
        else:
            # '>' follows '=': the range holds exactly the texts starting with "first=".
            query = (
                "SELECT id, dims FROM stats_cells WHERE measure = ? AND dims >= ? AND dims < ? "
                "AND length(dims) - length(replace(dims, ';', '')) = ? "
                "AND replace(dims, ?, '') != dims"
            )
            later = "".join(f";{name}=" for name in names[1:])
            params = (measure, names[0] + "=", names[0] + ">", len(names) - 1, later or "=")
        for cell_id, text in db.execute(query, params):
            dims = parse_dims_text(text)
            if tuple(d for d, _ in dims) == names:
                found[cell_id] = (measure, dims)
    return found


def unit_data(
    db: Db,
    period: Period,
    idents: dict[int, CellIdent],
    org: str | None,
    area: str | None = None,
) -> PeriodData:
    """The cells `idents` of the period summed per (organisation, area): all units,
    or those of `org` and/or `area` only."""
    in_ids, ids = db.any_of("cell_id", sorted(idents))
    rows = [
        (unit_id(r[0], r[1]), r[2], r[3], r[4], r[5])
        for r in db.execute(
            "SELECT org, area, cell_id, count, cell_key, offices FROM stats_published_sums "  # noqa: S608 -- any_of gives a fixed condition with a placeholder
            f"WHERE period = ? AND {in_ids} "
            "AND (CAST(? AS TEXT) IS NULL OR org = ?) AND (CAST(? AS TEXT) IS NULL OR area = ?)",
            (period.id, ids, org, org, area, area),
        )
    ]
    orgs: dict[str, str] = {}
    areas: dict[str, str] = {}
    offices: dict[str, int] = {}
    for unit_org, unit_area, count in db.execute(
        "SELECT org, area, count(*) FROM stats_published_reports "
        "WHERE period = ? AND (CAST(? AS TEXT) IS NULL OR org = ?) "
        "AND (CAST(? AS TEXT) IS NULL OR area = ?) GROUP BY org, area",
        (period.id, org, org, area, area),
    ):
        unit = unit_id(unit_org, unit_area)
        orgs[unit], areas[unit], offices[unit] = unit_org, unit_area, int(count)
    return PeriodData.from_unit_rows(period, rows, idents, orgs, offices, level="sums", areas=areas)


def office_data(
    db: Db,
    period: Period,
    idents: dict[int, CellIdent],
    org: str | None,
    office: str | None,
    area: str | None = None,
) -> PeriodData:
    """The cells `idents` of every published office of the period (or of `org`,
    `office` and/or `area`)."""
    in_ids, ids = db.any_of("c.cell_id", sorted(idents))
    params = (period.id, org, org, office, office, area, area)
    rows = [
        (r[0], r[1], r[2], r[3])
        for r in db.execute(
            "SELECT p.office, c.cell_id, c.count, c.cell_key FROM stats_published_reports p "  # noqa: S608 -- any_of gives a fixed condition with a placeholder
            "JOIN stats_report_cells c ON c.report_id = p.report_id "
            f"AND {in_ids} "
            "WHERE p.period = ? AND (CAST(? AS TEXT) IS NULL OR p.org = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR p.office = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR p.area = ?)",
            (ids, *params),
        )
    ]
    orgs: dict[str, str] = {}
    areas: dict[str, str] = {}
    for office_id, office_org, office_area in db.execute(
        "SELECT office, org, area FROM stats_published_reports "
        "WHERE period = ? AND (CAST(? AS TEXT) IS NULL OR org = ?) "
        "AND (CAST(? AS TEXT) IS NULL OR office = ?) "
        "AND (CAST(? AS TEXT) IS NULL OR area = ?)",
        params,
    ):
        orgs[office_id], areas[office_id] = office_org, office_area
    return PeriodData.from_coded_rows(period, rows, idents, orgs, list(orgs), areas)


def read_for(
    db: Db,
    period: Period,
    specs: Sequence[TableSpec],
    scope: Scope,
    org: str | None,
) -> PeriodData:
    """What `tabulate` needs for `specs` in `scope`, of `org`'s offices only if given."""
    idents = group_cells(db, (g for spec in specs for g in groups_read(spec)))
    if scope.level == "office":
        return office_data(db, period, idents, org, scope.key)
    within = org if org is not None or scope.level != "organisation" else scope.key
    area = scope.key if scope.level == "area" else None
    if any(spec.rows == OFFICE for spec in specs):
        return office_data(db, period, idents, within, None, area)
    return unit_data(db, period, idents, within, area)


def protected_tables(
    db: Db,
    policy: DisclosurePolicy,
    period: Period,
    org: str | None,
    specs: Sequence[TableSpec],
    scope: Scope,
) -> tuple[ProtectedTable, ...]:
    """The protected tables `specs` in `scope` of a published period, as coordinator
    `org` (None: the region's coordinator) may see them."""
    data = read_for(db, period, specs, scope, org)
    if org is not None:
        data = restrict_to_organisation(data, org)
    return tuple(protect(tabulate(data, spec, scope), policy) for spec in specs)


def protected_tables_by_scope(
    db: Db,
    policy: DisclosurePolicy,
    period: Period,
    org: str | None,
    specs: Sequence[TableSpec],
    scopes: Sequence[Scope],
) -> dict[Scope, tuple[ProtectedTable, ...]]:
    """`protected_tables` of `specs` for each of `scopes` (no office scope, no rows by
    office), from one read of the region's sums: what a page with a section per
    area needs, without one read per section. Each table equals its own read's:
    tabulating a scope sums the same units either way."""
    if any(s.level == "office" for s in scopes) or any(spec.rows == OFFICE for spec in specs):
        raise ValueError("office scopes and rows by office are read one by one")
    data = read_for(db, period, specs, Scope.region(), org)
    if org is not None:
        data = restrict_to_organisation(data, org)
    return {
        scope: tuple(protect(tabulate(data, spec, scope), policy) for spec in specs)
        for scope in scopes
    }
