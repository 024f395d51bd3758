"""Opening the node database and applying numbered migrations.

Migrations are SQL files `NNNN_name.sql` in `migrations/` beside this module,
applied in order by the shared runner (`support/migrations.py`), each in its
own transaction together with its row in `schema_version`. The connection
runs in autocommit mode and the store opens explicit transactions
(`transaction()`): sqlite-utils' write helpers commit on their own, which
would split a domain operation that must be atomic (e.g. "record a referral
and queue its sealed offer"), so domain writes use plain SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import sqlite_utils

from node.errors import ConfigError
from support.files import restrict_database
from support.migrations import Migration, MigrationError, Stamp, load_migrations
from support.migrations import migrate as run_migrations
from support.migrations import schema_version as support_schema_version


def migrations() -> list[Migration]:
    """Every migration shipped with the node, in order (numbered 1..n without gaps)."""
    try:
        directory = resources.files("node.storage").joinpath("migrations")
        return load_migrations(directory, "node.storage.migrations")
    except MigrationError as exc:
        raise ConfigError(str(exc)) from None


def schema_version(db: sqlite_utils.Database) -> int:
    """The database's schema version; 0 for a new database."""
    return support_schema_version(db.conn)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every migration newer than the database; return the resulting version.

    `schema_version.applied` holds a UTC date-time string, as it always has.
    """
    try:
        run_migrations(db.conn, migrations(), stamp=Stamp.UTC_DATETIME)
    except MigrationError as exc:
        raise ConfigError(str(exc)) from None
    return schema_version(db)


def _make_private(path: Path) -> None:
    """Restrict an existing database and its -wal/-shm to the owner
    (support/files.py `restrict_database`)."""
    try:
        restrict_database(path)
    except OSError as exc:
        raise ConfigError(f"cannot restrict the mode of {path} ({exc.strerror})") from None


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
