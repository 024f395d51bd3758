"""A hub database holding real reports of synthetic offices, stored as the hub stores
them, and the straightforward Python sums the published numbers must equal.

The offices are tests/stats/attack.py's (six offices of three organisations, real
reports with real cell keys computed by node.stats.compute), plus an office that
reports no non-zero cell. The offices lie in areas across organisations (one
organisation in three areas, one area of three organisations, one office without
an area). One office sends a revision 1 and a corrected
revision 2 before the cutoff, one a revision after it: the published reports are
the newest before the cutoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from hub.stats.cells import CellIdent, parse_dims_text
from hub.stats.store import store_report
from hub.storage.engine import Db
from node.stats.compute import compute
from node.stats.periods import parse_period as node_period
from protocol.cellkeys import KEY_SPACE
from protocol.payloads import StatsReport
from tests.stats.attack import make_offices

PERIOD = "2026-08"
CUTOFF = 2_000_000
EMPTY_OFFICE, EMPTY_ORG = "office-empty", "Zwst"
CORRECTED, LATE = "office-0", "office-3"  # revision 2 before the cutoff; revision 2 after it
# Per office of make_offices (Caritas x3, Diakonie x2, AWO), then the empty office's.
AREAS = ("Nord", "Süd", "", "Nord", "Süd", "Nord")
EMPTY_AREA = "Süd"


@dataclass(frozen=True)
class Fixture:
    """What was stored: the reports that count (office -> report), office -> organisation
    and office -> area."""

    reports: Mapping[str, StatsReport]
    organisations: Mapping[str, str]
    areas: Mapping[str, str]


def add_site(db: Db, office: str, org: str, area: str = "") -> None:
    db.execute(
        "INSERT INTO sites (node_id, name, org, services, languages, area, status, created) "
        "VALUES (?, ?, ?, '[]', '[]', ?, 'active', 0)",
        (office, office, org, area),
    )


def store_offices(db: Db, seed: int = 3) -> Fixture:
    """Store the offices' reports of PERIOD (and the revisions around them); publish nothing."""
    counted: dict[str, StatsReport] = {}
    organisations: dict[str, str] = {}
    areas: dict[str, str] = {}
    for i, office in enumerate(make_offices(seed)):
        node_id = f"office-{i}"
        add_site(db, node_id, office.org, AREAS[i])
        organisations[node_id] = office.org
        areas[node_id] = AREAS[i]
        cells = compute(office.facts, node_period(PERIOD))
        report = StatsReport(period=PERIOD, revision=1, generated=1, cells=cells)
        if node_id == CORRECTED:
            first = replace(report, cells=report.cells[::2])  # half the cells, later corrected
            store_report(db, node_id, first, f"{node_id}-1", now=CUTOFF - 100)
            report = replace(report, revision=2)
        store_report(db, node_id, report, f"{node_id}-{report.revision}", now=CUTOFF - 10)
        counted[node_id] = report
        if node_id == LATE:
            late = replace(report, revision=2, cells=report.cells[1:])
            store_report(db, node_id, late, f"{node_id}-late", now=CUTOFF + 10)
    add_site(db, EMPTY_OFFICE, EMPTY_ORG, EMPTY_AREA)
    organisations[EMPTY_OFFICE] = EMPTY_ORG
    areas[EMPTY_OFFICE] = EMPTY_AREA
    empty = StatsReport(period=PERIOD, revision=1, generated=1, cells=())
    store_report(db, EMPTY_OFFICE, empty, "empty-1", now=CUTOFF - 10)
    counted[EMPTY_OFFICE] = empty
    return Fixture(counted, organisations, areas)


Sums = dict[tuple[str, str, CellIdent], tuple[int, int, int]]


def python_sums(fixture: Fixture) -> Sums:
    """Per (organisation, area, cell): summed count, cell key mod KEY_SPACE, non-zero
    offices."""
    sums: dict[tuple[str, str, CellIdent], list[int]] = {}
    for office, report in fixture.reports.items():
        unit = (fixture.organisations[office], fixture.areas[office])
        for cell in report.cells:
            if cell.count:
                held = sums.setdefault((*unit, cell.ident()), [0, 0, 0])
                held[0] += cell.count
                held[1] = (held[1] + cell.cell_key) % KEY_SPACE
                held[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in sums.items()}


def stored_sums(db: Db, period: str) -> Sums:
    """The hub's `stats_published_sums` of `period`, by organisation, area and cell."""
    return {
        (org, area, (measure, parse_dims_text(dims))): (count, key, offices)
        for org, area, measure, dims, count, key, offices in db.execute(
            "SELECT s.org, s.area, k.measure, k.dims, s.count, s.cell_key, s.offices "
            "FROM stats_published_sums s JOIN stats_cells k ON k.id = s.cell_id "
            "WHERE s.period = ?",
            (period,),
        )
    }
