"""Numbered SQLite schema migrations, applied in order: one runner for node and hub.

A package ships its migrations as files `NNNN_name.sql` in one directory,
numbered 0001, 0002, ... without gaps or repeats. `migrate` applies those the
database lacks, each in its own `BEGIN IMMEDIATE` transaction together with
its row in `schema_version`: a failing migration leaves neither its changes
nor its row behind, and two processes opening the same file never apply one
twice. A database whose schema is newer than the software is refused before
anything is written.

The SQL of a migration is split into complete statements with
`sqlite3.complete_statement` (a trigger body stays whole) and run one by one
on the connection, never with `executescript`, which commits on its own. The
row in `schema_version` is inserted with parameters.

`schema_version.applied` records when a migration ran. The node has always
stored an ISO date-time string (TEXT), the hub unix seconds (INTEGER); old rows
stay as they are, so each side passes its `Stamp`.
"""

from __future__ import annotations

import enum
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources.abc import Traversable

MIGRATION_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


class MigrationError(Exception):
    """The migrations or the database cannot be used; the message is one line."""


class Stamp(enum.Enum):
    """How `schema_version.applied` records the time a migration ran."""

    UTC_DATETIME = "TEXT"  # "2026-09-21 12:00:00", as SQLite's datetime('now') (the node)
    UNIX_SECONDS = "INTEGER"  # int(time.time()) (the hub)

    def value_at(self, now: float) -> str | int:
        if self is Stamp.UTC_DATETIME:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
        return int(now)


# One fixed statement per stamp: no SQL is assembled from values.
_CREATE = {
    Stamp.UTC_DATETIME: (
        "CREATE TABLE IF NOT EXISTS schema_version"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
    ),
    Stamp.UNIX_SECONDS: (
        "CREATE TABLE IF NOT EXISTS schema_version"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)"
    ),
}
_INSERT = "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Traversable, where: str) -> list[Migration]:
    """Every `NNNN_name.sql` file in `directory` (a package resource), in order.

    `where` names the directory in messages (e.g. "hub.storage.migrations").

    Refuses two files with one number and a gap in the numbering (a file lost
    in packaging would otherwise be skipped for good).
    """
    found: dict[int, Migration] = {}
    for entry in directory.iterdir():
        m = MIGRATION_FILE.fullmatch(entry.name)
        if m is None:
            continue
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{where}: two migrations share the number {version:04d}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    ordered = [found[v] for v in sorted(found)]
    for expected, mig in enumerate(ordered, start=1):
        if mig.version != expected:
            raise MigrationError(
                f"{where}: migration {expected:04d} is missing"
                " (migrations are numbered 0001, 0002, ... without gaps)"
            )
    return ordered


def latest_version(migrations: list[Migration]) -> int:
    """The schema version a database has once every migration is applied."""
    return migrations[-1].version if migrations else 0


def statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (triggers included) without running them."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise MigrationError("a migration ends with an incomplete statement")


def schema_version(conn: sqlite3.Connection) -> int:
    """The newest migration recorded in the database; 0 for a new database."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(
    conn: sqlite3.Connection,
    migrations: list[Migration],
    *,
    stamp: Stamp,
    clock: Callable[[], float] = time.time,
) -> list[int]:
    """Apply the migrations the database lacks, one transaction each; return their versions.

    `conn` must be in autocommit mode (`isolation_level=None`) and outside a
    transaction. Raises MigrationError for a database newer than `migrations`
    and for a migration that fails (after rolling it back).
    """
    if conn.isolation_level is not None or conn.in_transaction:
        raise MigrationError(
            "migrations need a connection in autocommit mode, outside a transaction"
        )
    latest = latest_version(migrations)
    conn.execute(_CREATE[stamp])
    applied: list[int] = []
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read under the write lock: another process may have migrated meanwhile.
            current = schema_version(conn)
            if current > latest:
                raise MigrationError(
                    f"the database has schema version {current}, newer than this software"
                    f" ({latest}); install the newer version"
                )
            if current == latest:
                conn.execute("ROLLBACK")
                return applied
            mig = next(m for m in migrations if m.version > current)
            _apply(conn, mig, stamp.value_at(clock()))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(mig.version)


def _apply(conn: sqlite3.Connection, mig: Migration, applied: str | int) -> None:
    try:
        for stmt in statements(mig.sql):
            conn.execute(stmt)
        conn.execute(_INSERT, (mig.version, mig.name, applied))
    except sqlite3.Error as exc:
        raise MigrationError(
            f"migration {mig.name} failed ({exc}); nothing of it was applied"
        ) from exc
