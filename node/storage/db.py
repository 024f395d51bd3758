"""Opening the node database and applying numbered migrations.

Migrations are SQL files `NNNN_name.sql` beside this module, applied in
order, each in its own transaction together with its row in
`schema_version`. The connection runs in autocommit mode and the store opens
explicit transactions (`transaction()`): sqlite-utils' write helpers commit on
their own, which would split a domain operation that must be atomic (e.g.
"record a referral and queue its sealed offer"), so domain writes use plain SQL.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import sqlite_utils

from node.errors import ConfigError

_MIGRATION = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def migrations() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) for every migration, in order."""
    found = []
    for entry in resources.files("node.storage").joinpath("migrations").iterdir():
        m = _MIGRATION.fullmatch(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise ConfigError("node.storage migrations are not numbered 0001, 0002, ... without gaps")
    return found


def schema_version(db: sqlite_utils.Database) -> int:
    if "schema_version" not in db.table_names():
        return 0
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every migration newer than the database; return the resulting version."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
    )
    current = schema_version(db)
    known = migrations()
    if current > len(known):
        raise ConfigError(
            f"database schema version {current} is newer than this software ({len(known)})"
        )
    for number, name, sql in known[current:]:
        script = (
            "BEGIN IMMEDIATE;\n" + sql + f"\nINSERT INTO schema_version (version, name, applied)"
            f" VALUES ({number}, '{name}', datetime('now'));\nCOMMIT;\n"
        )
        try:
            db.conn.executescript(script)
        except sqlite3.Error:
            if db.conn.in_transaction:
                db.conn.rollback()
            raise
    return schema_version(db)


def _make_private(path: Path) -> None:
    """Restrict an existing database (and its -wal/-shm, which SQLite creates with
    the database's mode) to the owner: made by an older version, or under umask 022."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.stat().st_mode & 0o077:
                os.chmod(file, 0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot restrict the mode of {file} ({exc.strerror})") from None


def open_database(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) the node database in WAL mode, migrated; mode 0600."""
    try:
        conn = sqlite3.connect(str(path), isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open database {path} ({exc})") from None
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    # Deleted client data is overwritten with zeros rather than left in free pages.
    conn.execute("PRAGMA secure_delete = ON")
    if str(path) != ":memory:":
        # WAL with the default synchronous=FULL: a referral the API accepted survives
        # a power cut, which is what "accepted into the outbox" promises.
        conn.execute("PRAGMA journal_mode = WAL")
        # After WAL mode: -wal and -shm exist now, and later ones copy the db's mode.
        _make_private(Path(path))
    db = sqlite_utils.Database(conn)
    migrate(db)
    return db


def scrub(db: sqlite_utils.Database) -> None:
    """Copy the WAL into the database and truncate it, after client data was erased.

    With secure_delete the database file holds no trace of erased values, but
    the WAL keeps older page images until a checkpoint; a withdrawal or decline
    must not leave the client's data behind in it. Best effort: a reader can
    hold the checkpoint back, and the next scrub or the automatic checkpoint
    finishes the job.
    """
    if not db.conn.in_transaction:
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """One IMMEDIATE transaction; re-entrant (inner uses join the outer one)."""
    conn = db.conn
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
