"""Durable storage of statistics reports: every revision kept, the newest marked,
and each period's publication fixed once.

Schema: `hub/storage/migrations/0002_stats.sql`, `0005_cell_keys.sql`,
`0008_stats_published_sums.sql` and `0009_stats_published_areas.sql`. Reading
a published period's numbers is hub/stats/published.py.
Functions take the connection first so they run on the hub's database thread
(`DbWorker.run`).

A period is *published* once (`publish`): after its reporting deadline the
newest revision each office had sent before the cutoff is recorded in
`stats_published_reports`, and every table of that period is made from exactly
those reports, forever. A revision that arrives later is stored and audited
like any other but changes no published number: otherwise two snapshots of one
period, before and after a late revision, would show what the late case is.
The set is derived from the hub's own receive times, so publishing late (the
first request after the deadline) gives the same set as publishing on time;
hub/stats/publication.py decides when and with which cutoff. Each office's
organisation and area are recorded with its report, so a site changed later
moves no published number. The same transaction sums the chosen reports' cells
per (organisation, area) (`stats_published_sums`), the numbers of every region,
organisation and area table.

A report is refused when its revision is not greater than the newest stored
one for its office and period: revisions only move forward, so a node cannot
silently roll a period back. The one exception is a retry of the very same
message (same envelope id, same content), which answers as stored again,
because a node that lost the first answer must be able to retry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hub.errors import Problem
from hub.stats.cells import CellIdent, dims_text, parse_dims_text
from hub.storage.db import write
from hub.storage.engine import Db
from hub.storage.sites import audit
from protocol.cellkeys import KEY_SPACE
from protocol.codes import DATASET_VERSIONS
from protocol.encoding import pack
from protocol.hub_api import ProblemKind
from protocol.payloads import StatsReport

# Reports of every version the hub takes carry cell keys and are published;
# stored version-1 reports (before cell keys) never are.
_PUBLISHED_FROM = min(DATASET_VERSIONS)


@dataclass(frozen=True)
class Stored:
    """What the node is told: its report is durable (`duplicate`: it was already)."""

    period: str
    revision: int
    duplicate: bool


@dataclass(frozen=True)
class ReportRecord:
    """One stored revision's metadata (its counts are in `stats_report_cells`)."""

    office: str
    period: str
    revision: int
    generated: int
    received: int
    current: bool


@dataclass(frozen=True)
class Arrival:
    """Per office and period: when the first revision arrived and which revision counts."""

    office: str
    first_received: int
    revision: int
    last_received: int


def digest(report: StatsReport) -> bytes:
    """SHA-256 of the report with its cells in key order (independent of send order)."""
    m = report.to_map()
    m["cells"] = sorted(m["cells"], key=lambda c: (c[0], sorted(c[1].items())))
    return hashlib.sha256(pack(m)).digest()


def _intern(db: Db, keys: set[CellIdent]) -> dict[CellIdent, int]:
    texts = {(measure, dims_text(dims)) for measure, dims in keys}
    db.executemany("INSERT OR IGNORE INTO stats_cells (measure, dims) VALUES (?, ?)", sorted(texts))
    ids: dict[CellIdent, int] = {}
    for measure in {m for m, _ in texts}:
        for cell_id, dims in db.execute(
            "SELECT id, dims FROM stats_cells WHERE measure = ?", (measure,)
        ).fetchall():
            key = (measure, parse_dims_text(dims))
            if key in keys:
                ids[key] = cell_id
    return ids


def store_report(db: Db, office: str, report: StatsReport, msg_id: str, now: int) -> Stored:
    """Store a new revision durably and make it the current one, or refuse it (409)."""
    fingerprint = digest(report)
    with write(db, durable=True):
        # Another hub process may store a revision of this office's report now.
        db.lock("stats.report", office)
        held = db.execute(
            "SELECT msg_id, digest FROM stats_reports "
            "WHERE office = ? AND period = ? AND revision = ?",
            (office, report.period, report.revision),
        ).fetchone()
        if held is not None and held[0] == msg_id and bytes(held[1]) == fingerprint:
            return Stored(report.period, report.revision, duplicate=True)
        newest = db.execute(
            "SELECT max(revision) FROM stats_reports WHERE office = ? AND period = ?",
            (office, report.period),
        ).fetchone()[0]
        if newest is not None and report.revision <= newest:
            raise Problem(
                ProblemKind.CONFLICT,
                409,
                f"revision {report.revision} of {report.period} is not newer than the stored "
                f"revision {newest}; send revision {newest + 1} or higher",
            )
        db.execute(
            "UPDATE stats_reports SET current = 0 WHERE office = ? AND period = ? AND current = 1",
            (office, report.period),
        )
        (report_id,) = db.execute(
            "INSERT INTO stats_reports (office, period, revision, generated, received, "
            "msg_id, digest, current, dataset_version) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) "
            "RETURNING id",
            (
                office,
                report.period,
                report.revision,
                report.generated,
                now,
                msg_id,
                fingerprint,
                report.version,
            ),
        ).fetchone()
        ids = _intern(db, {c.ident() for c in report.cells})
        db.executemany(
            "INSERT INTO stats_report_cells (report_id, cell_id, count, cell_key) "
            "VALUES (?, ?, ?, ?)",
            [(report_id, ids[c.ident()], c.count, c.cell_key) for c in report.cells if c.count > 0],
        )
        audit(
            db,
            now,
            office,
            "stats.report",
            report.period,
            f"revision={report.revision} digest={fingerprint.hex()[:16]}",
        )
    return Stored(report.period, report.revision, duplicate=False)


@dataclass(frozen=True)
class Publication:
    """A period's fixed set of reports: when it was fixed and what it is made of."""

    period: str
    published: int
    cutoff: int
    reports: int


def publication(db: Db, period: str) -> Publication | None:
    row = db.execute(
        "SELECT period, published, cutoff, reports FROM stats_publications WHERE period = ?",
        (period,),
    ).fetchone()
    return None if row is None else Publication(*row)


def publish(db: Db, period: str, cutoff: int, now: int) -> Publication:
    """Fix `period`'s reports (idempotent): per office the newest revision of a
    supported dataset version (with cell keys) received before `cutoff`. Only call
    once the cutoff has passed."""
    with write(db, durable=True):
        # A period is published once, whichever hub process gets there first.
        db.lock("stats.publish", period)
        held = publication(db, period)
        if held is not None:
            return held
        db.execute(
            "INSERT INTO stats_publications (period, published, cutoff, reports) "
            "VALUES (?, ?, ?, 0)",
            (period, now, cutoff),
        )
        chosen = db.execute(
            "INSERT INTO stats_published_reports (period, report_id, office, org, area) "
            "SELECT ?, r.id, r.office, s.org, s.area FROM stats_reports r "
            "JOIN sites s ON s.node_id = r.office "
            "WHERE r.period = ? AND r.received < ? AND r.dataset_version >= ? "
            "AND r.revision = (SELECT max(o.revision) FROM stats_reports o "
            "  WHERE o.office = r.office AND o.period = r.period AND o.received < ? "
            "  AND o.dataset_version >= ?)",
            # A version-2 office counts as zero in the measures version 3 added.
            (period, period, cutoff, _PUBLISHED_FROM, cutoff, _PUBLISHED_FROM),
        )
        count = chosen.rowcount
        sum_published(db, period)
        db.execute("UPDATE stats_publications SET reports = ? WHERE period = ?", (count, period))
        audit(db, now, "hub", "stats.published", period, f"reports={count} cutoff={cutoff}")
    return Publication(period, now, cutoff, count)


def sum_published(db: Db, period: str) -> None:
    """Sum a published period's cells per (organisation, area) into
    `stats_published_sums` (inside the caller's write transaction). A publication
    never changes, so this runs once per period: in `publish`, or for a period
    published before these sums existed or before they were per area (`summed`
    0, migrations 0008 and 0009), at its first read (`ensure_summed`)."""
    units = db.execute(
        "SELECT DISTINCT org, area FROM stats_published_reports WHERE period = ? "
        "ORDER BY org, area",
        (period,),
    ).fetchall()
    for org, area in units:
        # One unit at a time: many small sorts are quicker than one of the whole period.
        db.execute(
            "INSERT INTO stats_published_sums "
            "(period, cell_id, org, area, count, cell_key, offices) "
            "SELECT ?, c.cell_id, ?, ?, sum(c.count), sum(c.cell_key) % ?, count(*) "
            "FROM stats_published_reports p "
            "JOIN stats_report_cells c ON c.report_id = p.report_id "
            "WHERE p.period = ? AND p.org = ? AND p.area = ? GROUP BY c.cell_id",
            (period, org, area, KEY_SPACE, period, org, area),
        )
    db.execute("UPDATE stats_publications SET summed = 1 WHERE period = ?", (period,))


def ensure_summed(db: Db, period: str) -> bool:
    """Make a published period's sums if they are missing; True if it made them."""
    found = db.execute("SELECT summed FROM stats_publications WHERE period = ?", (period,))
    row = found.fetchone()
    if row is None or row[0]:
        return False
    with write(db, durable=True):
        db.lock("stats.publish", period)
        found = db.execute("SELECT summed FROM stats_publications WHERE period = ?", (period,))
        if found.fetchone()[0]:
            return False
        sum_published(db, period)
    return True


def late_revisions(db: Db, period: str, cutoff: int) -> int:
    """Revisions of `period` that arrived at or after the cutoff (they count nowhere)."""
    return int(
        db.execute(
            "SELECT count(*) FROM stats_reports WHERE period = ? AND received >= ?",
            (period, cutoff),
        ).fetchone()[0]
    )


def arrivals(db: Db, period: str) -> dict[str, Arrival]:
    """Per office that reported `period`: first arrival, current revision, last arrival."""
    out: dict[str, Arrival] = {}
    for office, first, revision, last in db.execute(
        "SELECT office, min(received), max(revision), max(received) FROM stats_reports "
        "WHERE period = ? GROUP BY office",
        (period,),
    ):
        out[office] = Arrival(office, first, revision, last)
    return out


def all_periods(db: Db) -> list[str]:
    """Every period any office reported (unordered ids)."""
    return [r[0] for r in db.execute("SELECT DISTINCT period FROM stats_reports")]


def periods(db: Db, offices: set[str]) -> list[str]:
    """Every period some office of `offices` reported (sorted ids).

    Each office's period has exactly one current revision, so the partial index
    of current rows holds every (period, office) once: no older revision is read.
    """
    in_offices, wanted = db.any_of("office", sorted(offices))
    found = db.execute(
        f"SELECT DISTINCT period FROM stats_reports WHERE current = 1 AND {in_offices}",  # noqa: S608 -- any_of gives a fixed condition with a placeholder
        (wanted,),
    )
    return sorted(r[0] for r in found)


def unpublished_periods(db: Db) -> list[str]:
    """Periods with a report and no publication yet (sorted ids)."""
    found = db.execute(
        "SELECT DISTINCT period FROM stats_reports WHERE current = 1 "
        "AND period NOT IN (SELECT period FROM stats_publications)"
    )
    return sorted(r[0] for r in found)


def revisions(db: Db, office: str, period: str) -> list[ReportRecord]:
    """Every stored revision of one office's period, oldest first (audits and tests)."""
    return [
        ReportRecord(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
        for r in db.execute(
            "SELECT office, period, revision, generated, received, current FROM stats_reports "
            "WHERE office = ? AND period = ? ORDER BY revision",
            (office, period),
        )
    ]


def revision_cells(db: Db, office: str, period: str, revision: int) -> dict[CellIdent, int]:
    """The counts of one stored revision (audits and tests; never shown to coordinators)."""
    out: dict[CellIdent, int] = {}
    for measure, dims, count in db.execute(
        "SELECT k.measure, k.dims, c.count FROM stats_reports r "
        "JOIN stats_report_cells c ON c.report_id = r.id "
        "JOIN stats_cells k ON k.id = c.cell_id "
        "WHERE r.office = ? AND r.period = ? AND r.revision = ?",
        (office, period, revision),
    ):
        out[(measure, parse_dims_text(dims))] = count
    return out
