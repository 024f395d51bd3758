"""Opening the hub database, applying migrations, and running queries off the loop.

One process-wide writer connection in WAL mode. Its default is
`synchronous=NORMAL` (a commit survives a crash of the hub process); work that
backs an acknowledgement to a node (uploads, enrollment, site changes) commits
with `synchronous=FULL`, which fsyncs the WAL before COMMIT returns.

The server runs every query on one dedicated thread (`DbWorker`), so the
connection is never used concurrently and the event loop never waits on disk.
The CLI may touch the same file from another process while the server runs;
SQLite's file locks plus `BEGIN IMMEDIATE` and a busy timeout make that safe.

Migrations are the files `migrations/NNNN_name.sql`, applied in order by the
shared runner (`support/migrations.py`), each in one transaction together with
its row in `schema_version`. Other parts of the hub add their own numbered
files; the loader needs no list.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlite_utils

from hub.errors import StorageError
from support.files import restrict_database
from support.migrations import Migration, MigrationError, Stamp
from support.migrations import load_migrations as support_load_migrations
from support.migrations import migrate as run_migrations
from support.migrations import schema_version as support_schema_version

P = ParamSpec("P")
T = TypeVar("T")
BUSY_TIMEOUT_MS = 10_000


def load_migrations() -> list[Migration]:
    """Every migration file shipped in hub.storage.migrations, in version order."""
    try:
        directory = resources.files("hub.storage.migrations")
        return support_load_migrations(directory, "hub.storage.migrations")
    except MigrationError as exc:
        raise StorageError(str(exc)) from None


def connect(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) the database with the hub's pragmas, then migrate."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
        # After WAL mode: -wal and -shm exist now, and later ones copy the db's mode.
        try:
            restrict_database(Path(path))
        except OSError as exc:
            conn.close()
            raise StorageError(f"cannot restrict the mode of {path} ({exc.strerror})") from None
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    db = sqlite_utils.Database(conn, execute_plugins=False)
    migrate(db)
    return db


def schema_version(db: sqlite_utils.Database) -> int:
    return support_schema_version(db.conn)


def migrate(db: sqlite_utils.Database, now: Callable[[], float] = time.time) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied.

    Each migration commits durably (synchronous=FULL, like `write`);
    `schema_version.applied` holds unix seconds, as it always has.
    """
    conn = db.conn
    conn.execute("PRAGMA synchronous=FULL")
    try:
        return run_migrations(conn, load_migrations(), stamp=Stamp.UNIX_SECONDS, clock=now)
    except MigrationError as exc:
        raise StorageError(str(exc)) from None
    finally:
        conn.execute("PRAGMA synchronous=NORMAL")


@contextmanager
def write(db: sqlite_utils.Database, *, durable: bool = True) -> Iterator[sqlite_utils.Database]:
    """One short write transaction; `durable` fsyncs the commit (the default)."""
    conn = db.conn
    if durable:
        conn.execute("PRAGMA synchronous=FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        if durable:
            conn.execute("PRAGMA synchronous=NORMAL")


class DbWorker:
    """Runs functions of the connection on one dedicated thread, awaited from the loop."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-db")

    async def run(
        self,
        fn: Callable[Concatenate[sqlite_utils.Database, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, functools.partial(fn, self.db, *args, **kwargs)
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.db.close()


def rows(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    return list(db.query(sql, params))
