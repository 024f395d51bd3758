"""A published period's protected tables, read from the database for just the tables asked.

`protected_tables(db, policy, period, org, specs, scope)` is what every
coordinator route calls (on the hub's database thread, through
hub/stats/view.py) and what bench/stats.py times. It reads only the cells the
tables need (`groups_read`) at the level they need:

* region and organisation tables (also rows by organisation): the period's
  sums per organisation, written once when the period was published
  (`stats_published_sums`, hub/stats/store.py `publish`): a few rows per
  number, whatever the number of offices;
* tables of one office, or with a row per office: those offices' published
  cells of the needed cells only (a primary-key lookup per report and cell).

Nothing is cached: a request costs a few small indexed reads. An
organisation-limited coordinator's reads select their organisation's rows in
SQL, and `restrict_to_organisation` is applied again before tabulating, so no
other office's number is ever loaded for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import sqlite_utils

from hub.stats.aggregate import (
    OFFICE,
    CellGroup,
    PeriodData,
    Scope,
    TableSpec,
    groups_read,
    restrict_to_organisation,
    tabulate,
)
from hub.stats.cells import CellIdent, parse_dims_text
from hub.stats.disclosure import DisclosurePolicy, ProtectedTable, protect
from hub.stats.periods import Period


def group_cells(db: sqlite_utils.Database, groups: Iterable[CellGroup]) -> dict[int, CellIdent]:
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
                "AND instr(dims, ?) > 0"
            )
            later = "".join(f";{name}=" for name in names[1:])
            params = (measure, names[0] + "=", names[0] + ">", len(names) - 1, later or "=")
        for cell_id, text in db.execute(query, params):
            dims = parse_dims_text(text)
            if tuple(d for d, _ in dims) == names:
                found[cell_id] = (measure, dims)
    return found


def organisation_data(
    db: sqlite_utils.Database, period: Period, idents: dict[int, CellIdent], org: str | None
) -> PeriodData:
    """The cells `idents` of the period summed per organisation (all, or `org` only)."""
    ids = json.dumps(sorted(idents))
    rows = [
        (r[0], r[1], r[2], r[3], r[4])
        for r in db.execute(
            "SELECT org, cell_id, count, cell_key, offices FROM stats_published_sums "
            "WHERE period = ? AND cell_id IN (SELECT value FROM json_each(?)) "
            "AND (? IS NULL OR org = ?)",
            (period.id, ids, org, org),
        )
    ]
    offices = {
        r[0]: int(r[1])
        for r in db.execute(
            "SELECT org, count(*) FROM stats_published_reports "
            "WHERE period = ? AND (? IS NULL OR org = ?) GROUP BY org",
            (period.id, org, org),
        )
    }
    orgs = {o: o for o in offices}
    return PeriodData.from_unit_rows(period, rows, idents, orgs, offices, level="organisation")


def office_data(
    db: sqlite_utils.Database,
    period: Period,
    idents: dict[int, CellIdent],
    org: str | None,
    office: str | None,
) -> PeriodData:
    """The cells `idents` of every published office of the period (or of `org`, or `office`)."""
    ids = json.dumps(sorted(idents))
    params = (period.id, org, org, office, office)
    rows = [
        (r[0], r[1], r[2], r[3])
        for r in db.execute(
            "SELECT p.office, c.cell_id, c.count, c.cell_key FROM stats_published_reports p "
            "JOIN stats_report_cells c ON c.report_id = p.report_id "
            "AND c.cell_id IN (SELECT value FROM json_each(?)) "
            "WHERE p.period = ? AND (? IS NULL OR p.org = ?) AND (? IS NULL OR p.office = ?)",
            (ids, *params),
        )
    ]
    orgs = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT office, org FROM stats_published_reports "
            "WHERE period = ? AND (? IS NULL OR org = ?) AND (? IS NULL OR office = ?)",
            params,
        )
    }
    return PeriodData.from_coded_rows(period, rows, idents, orgs, list(orgs))


def read_for(
    db: sqlite_utils.Database,
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
    if any(spec.rows == OFFICE for spec in specs):
        return office_data(db, period, idents, within, None)
    return organisation_data(db, period, idents, within)


def protected_tables(
    db: sqlite_utils.Database,
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
