"""Opening the hub database, applying migrations, and running queries off the loop.

One process-wide writer connection in WAL mode. Its default is
`synchronous=NORMAL` (a commit survives a crash of the hub process); work that
backs an acknowledgement to a node (uploads, enrollment, site changes) commits
with `synchronous=FULL`, which fsyncs the WAL before COMMIT returns.

The server runs every query on one dedicated thread (`DbWorker`), so the
connection is never used concurrently and the event loop never waits on disk.
Durable work that arrives while the thread is busy shares one transaction and
one fsync (`DbWorker.run_durable`, group commit); each caller hears its result
only after that COMMIT returned.
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
import contextlib
import errno
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

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
# At most this many callers share one group commit (`DbWorker.run_durable`); the
# rest wait for the next one, so one transaction (and the answers held until
# its fsync) stays bounded.
MAX_GROUP = 32
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


@dataclass
class Outcome:
    """What one function of a group commit returned or raised."""

    value: Any = None
    error: BaseException | None = None


def run_group(db: sqlite_utils.Database, fns: Sequence[Callable[[], Any]]) -> list[Outcome]:
    """Run `fns` in one durable transaction, each in a savepoint of its own; commit once.

    A function that raises has its writes undone (ROLLBACK TO its savepoint)
    and its exception as its outcome; the others go on and commit. Returns
    only after the COMMIT, so no outcome is known before its writes are on
    disk. When the transaction as a whole cannot go on (BEGIN or COMMIT fails,
    or SQLite ended the transaction itself, as it may on SQLITE_FULL or an I/O
    error), it is rolled back and every function gets that exception: nothing
    of the group is stored, nobody hears "done".
    """
    conn = db.conn
    outcomes: list[Outcome] = []
    conn.execute("PRAGMA synchronous=FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        for fn in fns:
            conn.execute("SAVEPOINT grouped")
            try:
                outcomes.append(Outcome(value=fn()))
            except Exception as exc:  # the caller's own failure: answered to that caller
                if not conn.in_transaction:
                    raise
                conn.execute("ROLLBACK TO grouped")
                outcomes.append(Outcome(error=exc))
            conn.execute("RELEASE grouped")
        conn.execute("COMMIT")
    except Exception as exc:  # noqa: BLE001 -- the group's transaction failed: every caller hears it
        _rollback(conn)
        return [Outcome(error=exc) for _ in fns]
    finally:
        conn.execute("PRAGMA synchronous=NORMAL")
    return outcomes


@dataclass
class _Durable:
    """A caller of `run_durable` waiting for its group commit."""

    fn: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], outcome: Outcome) -> None:
    if future.done():  # the caller went away (a cancelled request)
        return
    if outcome.error is not None:
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome.value)


class DbWorker:
    """Runs functions of the connection on one dedicated thread, awaited from the loop.

    A function that fails because the disk is full raises `StorageFull` (a 507
    problem) here, logged by `full_log`; nothing else is translated.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        full_log: DiskFullLog | None = None,
        max_group: int = MAX_GROUP,
    ) -> None:
        self.db = db
        self.full_log = full_log or DiskFullLog()
        self.max_group = max_group
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-db")
        self._reader = _open_reader(db)
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-db-read")
        self._lock = threading.Lock()
        self._waiting: list[_Durable] = []
        self._flush_queued = False

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
            self._translate(fn, exc)
            raise

    async def read(
        self,
        fn: Callable[Concatenate[sqlite_utils.Database, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run a read-only `fn` on a second connection and thread of its own.

        For the checks before a request's body is read (`hub.auth.precheck`):
        they need not wait behind the fsync of uploads on the writer thread. In
        WAL mode a reader sees the newest commit and never blocks the writer;
        the connection is `query_only`, so `fn` cannot write by mistake. An
        in-memory database (tests) has no second connection: `fn` runs on the
        writer thread then.
        """
        if self._reader is None:
            return await self.run(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._read_pool, functools.partial(fn, self._reader, *args, **kwargs)
        )

    async def run_durable(
        self,
        fn: Callable[Concatenate[sqlite_utils.Database, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn` inside a durable transaction (group commit); its result after the fsync.

        `fn` must not open a transaction itself. Callers that arrive while the
        database thread is busy wait together and share the next transaction
        (at most `max_group` of them), each in a savepoint: one caller's
        exception undoes only its own writes (`run_group`). The first caller
        finds the thread idle and commits alone, so nobody waits for a group
        to fill: under load the groups grow by themselves, one fsync serving
        all the uploads that came in during the one before.
        """
        loop = asyncio.get_running_loop()
        waiting = _Durable(
            functools.partial(fn, self.db, *args, **kwargs), loop.create_future(), loop
        )
        with self._lock:
            self._waiting.append(waiting)
            submit, self._flush_queued = not self._flush_queued, True
        if submit:
            self._pool.submit(self._flush)
        try:
            return cast(T, await waiting.future)
        except (sqlite3.Error, OSError) as exc:
            self._translate(fn, exc)
            raise

    def _flush(self) -> None:
        """On the database thread: one group commit of the callers waiting now."""
        with self._lock:
            group, self._waiting = self._waiting[: self.max_group], self._waiting[self.max_group :]
            if self._waiting:
                self._pool.submit(self._flush)
            else:
                self._flush_queued = False
        try:
            outcomes = run_group(self.db, [w.fn for w in group])
        except Exception as exc:  # noqa: BLE001 -- not even the rollback worked: nobody hears "done"
            outcomes = [Outcome(error=exc) for _ in group]
        for w, outcome in zip(group, outcomes, strict=True):
            # A caller whose loop is closed already waits for nothing.
            with contextlib.suppress(RuntimeError):
                w.loop.call_soon_threadsafe(_settle, w.future, outcome)

    def _translate(self, fn: Callable[..., Any], exc: BaseException) -> None:
        """Raise `StorageFull` for a full disk (logged); return for anything else."""
        if not disk_full(exc):
            return
        self.full_log.note(getattr(fn, "__name__", "query"))
        raise StorageFull() from None

    def close(self) -> None:
        self._read_pool.shutdown(wait=True)
        if self._reader is not None:
            self._reader.close()
        self._pool.shutdown(wait=True)
        self.db.close()


def _open_reader(db: sqlite_utils.Database) -> sqlite_utils.Database | None:
    """A read-only second connection to `db`'s file, or None for an in-memory database."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    path = row[2] if row is not None else ""
    if not path:
        return None
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only=ON")
    return sqlite_utils.Database(conn, execute_plugins=False)


def rows(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    return list(db.query(sql, params))
