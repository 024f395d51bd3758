"""Opening the hub database, applying migrations, and running queries off the loop.

One process-wide writer connection in WAL mode. Its default is
`synchronous=NORMAL` (a commit survives a crash of the hub process); work that
backs an acknowledgement to a node (uploads, enrollment, site changes) commits
with `synchronous=FULL`, which fsyncs the WAL before COMMIT returns.

The server runs every query on one dedicated thread (`DbWorker`), so the
connection is never used concurrently and the event loop never waits on disk.
The CLI may touch the same file from another process while the server runs;
SQLite's file locks plus `BEGIN IMMEDIATE` and a busy timeout make that safe.

A function that fails because the disk is full (SQLITE_FULL, ENOSPC) raises
`StorageFull` from `DbWorker.run`: a `507 storage-full` answer, logged by
`DiskFullLog` once a minute (docs/hub.md, "A full disk").

Migrations are the files `migrations/NNNN_name.sql`, applied in order by the
shared runner (`support/migrations.py`), each in one transaction together with
its row in `schema_version`. Other parts of the hub add their own numbered
files; the loader needs no list.
"""

from __future__ import annotations

import asyncio
import errno
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
import structlog

from hub.errors import StorageError, StorageFull
from support.files import restrict_database
from support.migrations import Migration, MigrationError, Stamp
from support.migrations import load_migrations as support_load_migrations
from support.migrations import migrate as run_migrations
from support.migrations import schema_version as support_schema_version

P = ParamSpec("P")
T = TypeVar("T")
BUSY_TIMEOUT_MS = 10_000
# A full disk is logged at most this often (seconds); each refusal in between is counted.
DISK_FULL_LOG_INTERVAL = 60.0
log = structlog.get_logger()


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
            _rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            # A COMMIT that fails (a full disk) may leave the transaction open,
            # and every later BEGIN would fail with it.
            _rollback(conn)
            raise
    finally:
        if durable:
            conn.execute("PRAGMA synchronous=NORMAL")


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may have rolled back on its own (SQLITE_FULL can end the whole
    # transaction); a ROLLBACK then would replace the real error with
    # "no transaction is active".
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or the user's quota) is full: SQLITE_FULL or ENOSPC."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or (
            "database or disk is full" in str(exc)
        )
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return False


class DiskFullLog:
    """`storage.full` at most once per `interval` seconds, with how often it happened.

    Without a traceback or the exception's text: the operator needs to know that
    the disk is full and since when, not one line per refused request.
    """

    def __init__(
        self,
        interval: float = DISK_FULL_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._count = 0

    def note(self, operation: str) -> None:
        self._count += 1
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return
        log.warning(
            "storage.full",
            operation=operation,
            failures=self._count,
            interval=self._interval,
        )
        self._last, self._count = now, 0


class DbWorker:
    """Runs functions of the connection on one dedicated thread, awaited from the loop.

    A function that fails because the disk is full raises `StorageFull` (a 507
    problem) here, logged by `full_log`; nothing else is translated.
    """

    def __init__(self, db: sqlite_utils.Database, full_log: DiskFullLog | None = None) -> None:
        self.db = db
        self.full_log = full_log or DiskFullLog()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-db")

    async def run(
        self,
        fn: Callable[Concatenate[sqlite_utils.Database, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool, functools.partial(fn, self.db, *args, **kwargs)
            )
        except (sqlite3.Error, OSError) as exc:
            if not disk_full(exc):
                raise
            self.full_log.note(getattr(fn, "__name__", "query"))
            raise StorageFull() from None

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.db.close()


def rows(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    return list(db.query(sql, params))
