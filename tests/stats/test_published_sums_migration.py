"""Migration 0008 (stats_published_sums): a hub database with a period published
before it gets that period's sums at the period's first read, equal to Python sums
of the published reports, and tables equal to the straightforward path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hub.settings import HubSettings
from hub.stats.aggregate import OFFICE, PeriodData, Scope, TableSpec, tabulate
from hub.stats.periods import parse_period
from hub.stats.publication import due
from hub.stats.published import read_for
from hub.stats.store import ensure_summed
from hub.storage.db import load_migrations, migrate, schema_version
from hub.storage.engine import Db, SqliteDb
from support.migrations import Stamp
from support.migrations import migrate as run_migrations
from tests.stats.hubdata import CUTOFF, PERIOD, python_sums, store_offices, stored_sums

SUMS = 8  # the migration under test


def database_before_sums(path: Path) -> SqliteDb:
    """A hub database at the schema version before migration 0008."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    before = [m for m in load_migrations() if m.version < SUMS]
    run_migrations(conn, before, stamp=Stamp.UNIX_SECONDS, clock=lambda: 0.0)
    return SqliteDb(conn)


def publish_as_before(db: Db, period: str, cutoff: int) -> None:
    """What `publish` recorded before migration 0008: the chosen reports only."""
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO stats_publications (period, published, cutoff, reports) VALUES (?, ?, ?, 0)",
        (period, cutoff, cutoff),
    )
    db.execute(
        "INSERT INTO stats_published_reports (period, report_id, office, org) "
        "SELECT ?, r.id, r.office, s.org FROM stats_reports r "
        "JOIN sites s ON s.node_id = r.office "
        # Reports with cell keys (version 2 then; the fixture's may be newer).
        "WHERE r.period = ? AND r.received < ? AND r.dataset_version >= 2 "
        "AND r.revision = (SELECT max(o.revision) FROM stats_reports o "
        "  WHERE o.office = r.office AND o.period = r.period AND o.received < ? "
        "  AND o.dataset_version >= 2)",
        (period, period, cutoff, cutoff),
    )
    db.execute("COMMIT")


def test_a_period_published_before_the_migration_is_summed_at_its_first_read(
    tmp_path: Path, hub_settings: HubSettings
) -> None:
    db = database_before_sums(tmp_path / "hub.db")
    try:
        assert schema_version(db) == SUMS - 1
        fixture = store_offices(db)
        publish_as_before(db, PERIOD, CUTOFF)
        # 0009 (sums per area) follows and leaves the period unsummed too.
        assert migrate(db) == [m.version for m in load_migrations() if m.version >= SUMS]
        assert stored_sums(db, PERIOD) == {}
        assert db.execute("SELECT summed FROM stats_publications").fetchall() == [(0,)]

        held = due(db, parse_period(PERIOD), hub_settings, CUTOFF + 99)
        assert held is not None
        assert held.cutoff == CUTOFF

        assert stored_sums(db, PERIOD) == python_sums(fixture)
        assert db.execute("SELECT summed FROM stats_publications").fetchall() == [(1,)]
        assert not ensure_summed(db, PERIOD)  # once
        period = parse_period(PERIOD)
        expected = PeriodData.from_reports(period, fixture.reports, fixture.organisations)
        for spec in (TableSpec("contacts", "channel", "gender"), TableSpec("cases_new", OFFICE)):
            got = read_for(db, period, [spec], Scope.region(), None)
            assert tabulate(got, spec) == tabulate(expected, spec)
    finally:
        db.close()
