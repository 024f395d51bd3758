"""The migration runner node and hub share: order, one transaction each, refusals."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from support.migrations import (
    Migration,
    MigrationError,
    Stamp,
    load_migrations,
    migrate,
    schema_version,
    statements,
)

NOW = 1_790_000_000.0  # 2026-09-21 ...


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _migrations(*sql: str) -> list[Migration]:
    return [Migration(n, f"{n:04d}_step.sql", s) for n, s in enumerate(sql, start=1)]


def _rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT version, name, applied FROM schema_version ORDER BY 1").fetchall()


def test_applies_in_order_once_and_records_each(tmp_path: Path) -> None:
    """A new database gets every migration with its row; running again applies none."""
    conn = _conn(tmp_path / "a.db")
    migs = _migrations("CREATE TABLE a (x);", "ALTER TABLE a ADD COLUMN y;")
    assert migrate(conn, migs, stamp=Stamp.UNIX_SECONDS, clock=lambda: NOW) == [1, 2]
    assert migrate(conn, migs, stamp=Stamp.UNIX_SECONDS, clock=lambda: NOW) == []
    assert _rows(conn) == [(1, "0001_step.sql", int(NOW)), (2, "0002_step.sql", int(NOW))]
    assert schema_version(conn) == 2


def test_the_stamp_keeps_each_sides_column_type(tmp_path: Path) -> None:
    """The node's rows say when as a UTC date-time string, the hub's as unix seconds."""
    node = _conn(tmp_path / "node.db")
    migrate(node, _migrations("CREATE TABLE a (x);"), stamp=Stamp.UTC_DATETIME, clock=lambda: 0)
    assert _rows(node) == [(1, "0001_step.sql", "1970-01-01 00:00:00")]
    ddl = node.execute("SELECT sql FROM sqlite_master WHERE name = 'schema_version'").fetchone()
    assert "applied TEXT" in ddl[0]
    hub = _conn(tmp_path / "hub.db")
    migrate(hub, _migrations("CREATE TABLE a (x);"), stamp=Stamp.UNIX_SECONDS, clock=lambda: 7.9)
    assert _rows(hub) == [(1, "0001_step.sql", 7)]


def test_an_existing_database_keeps_its_old_rows(tmp_path: Path) -> None:
    """Rows written by the earlier runners (datetime('now') text) stay as they are."""
    conn = _conn(tmp_path / "old.db")
    conn.executescript(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied TEXT NOT NULL);"
        "CREATE TABLE a (x);"
        "INSERT INTO schema_version VALUES (1, '0001_step.sql', datetime('now'));"
    )
    before = _rows(conn)
    migs = _migrations("CREATE TABLE a (x);", "CREATE TABLE b (y);")
    assert migrate(conn, migs, stamp=Stamp.UTC_DATETIME) == [2]
    assert _rows(conn)[:1] == before


def test_a_failing_migration_is_rolled_back_with_its_row(tmp_path: Path) -> None:
    """A statement that fails undoes the whole migration and its schema_version row;
    the migrations before it stay applied."""
    conn = _conn(tmp_path / "a.db")
    migs = _migrations(
        "CREATE TABLE a (x);",
        "CREATE TABLE b (y);\nINSERT INTO b VALUES (1);\nINSERT INTO nowhere VALUES (1);",
    )
    with pytest.raises(MigrationError, match=r"0002_step\.sql failed"):
        migrate(conn, migs, stamp=Stamp.UNIX_SECONDS)
    assert not conn.in_transaction
    assert schema_version(conn) == 1
    assert [r[0] for r in _rows(conn)] == [1]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "a" in tables
    assert "b" not in tables


def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    """A schema version above the newest migration is refused before anything is written."""
    conn = _conn(tmp_path / "a.db")
    migrate(conn, _migrations("CREATE TABLE a (x);"), stamp=Stamp.UNIX_SECONDS)
    conn.execute("INSERT INTO schema_version VALUES (5, '0005_future.sql', 0)")
    migs = _migrations("CREATE TABLE a (x);", "CREATE TABLE b (y);")
    with pytest.raises(MigrationError, match=r"schema version 5, newer than this software \(2\)"):
        migrate(conn, migs, stamp=Stamp.UNIX_SECONDS)
    assert not conn.in_transaction
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "b" not in tables


def test_a_connection_inside_a_transaction_is_refused(tmp_path: Path) -> None:
    """The runner opens its own transactions; it refuses to run inside a caller's."""
    conn = _conn(tmp_path / "a.db")
    conn.execute("BEGIN")
    with pytest.raises(MigrationError, match="autocommit"):
        migrate(conn, _migrations("CREATE TABLE a (x);"), stamp=Stamp.UNIX_SECONDS)
    legacy = sqlite3.connect(tmp_path / "b.db")  # isolation_level "" (implicit BEGIN)
    with pytest.raises(MigrationError, match="autocommit"):
        migrate(legacy, _migrations("CREATE TABLE a (x);"), stamp=Stamp.UNIX_SECONDS)


def _write(directory: Path, *names: str) -> Path:
    directory.mkdir()
    for name in names:
        (directory / name).write_text("CREATE TABLE t (x);\n", encoding="utf-8")
    return directory


def test_loader_refuses_a_gap(tmp_path: Path) -> None:
    """0001 and 0003 without 0002: a file lost in packaging is an error, not skipped."""
    d = _write(tmp_path / "m", "0001_a.sql", "0003_c.sql")
    with pytest.raises(MigrationError, match="0002 is missing"):
        load_migrations(d, "pkg.migrations")


def test_loader_refuses_a_duplicate_number(tmp_path: Path) -> None:
    """Two files numbered 0002 are refused."""
    d = _write(tmp_path / "m", "0001_a.sql", "0002_b.sql", "0002_other.sql")
    with pytest.raises(MigrationError, match="two migrations share the number 0002"):
        load_migrations(d, "pkg.migrations")


def test_loader_orders_and_ignores_other_files(tmp_path: Path) -> None:
    """Files are ordered by number; names that are not NNNN_name.sql are ignored."""
    d = _write(tmp_path / "m", "0002_b.sql", "0001_a.sql", "README.txt", "__init__.py")
    assert [m.name for m in load_migrations(d, "pkg.migrations")] == ["0001_a.sql", "0002_b.sql"]


def test_the_shipped_migrations_load() -> None:
    """Node and hub ship migrations numbered without gaps (what both loaders require)."""
    node = load_migrations(resources.files("node.storage") / "migrations", "node")
    hub = load_migrations(resources.files("hub.storage.migrations"), "hub")
    assert node[0].version == hub[0].version == 1


def test_splitter_keeps_triggers_whole() -> None:
    """Statements are split at complete SQL, so a trigger body stays one statement."""
    script = (
        "CREATE TABLE t (a);\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET a = 1;\nEND;\n-- end\n"
    )
    assert len(list(statements(script))) == 2


def test_splitter_refuses_an_incomplete_statement() -> None:
    """A migration that ends in the middle of a statement is refused, not half run."""
    with pytest.raises(MigrationError, match="incomplete"):
        list(statements("CREATE TABLE t (a);\nCREATE TABLE u (\n"))
