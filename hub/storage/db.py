"""Opening the hub database, applying migrations, and running queries off the loop.

The hub keeps its state in SQLite (a file in the data directory, the default)
or in PostgreSQL (`[database] url`, for several hub processes on one database;
docs/operations.md). Both are reached through `hub.storage.engine.Db`; this
module opens either and runs the work of the server on its threads. What
follows is said of SQLite; `hub/storage/postgres.py` tells the differences.

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
`DiskFullLog` once a minute (docs/hub.md, "A full disk"). One that fails because
PostgreSQL is out of reach (a failover) raises `StorageUnavailable`, a 503.

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

import psycopg
import psycopg_pool
import structlog

from hub.errors import StorageError, StorageFull, StorageUnavailable
from support.files import restrict_database
from support.migrations import Migration, MigrationError, Stamp
from support.migrations import load_migrations as support_load_migrations
from support.migrations import migrate as run_migrations
from support.migrations import schema_version as support_schema_version

from . import postgres
from .engine import ENGINE_ERRORS, POSTGRESQL, SQLITE, Db, SqliteDb

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
# What a job on the database threads may fail with that `DbWorker._translate` looks at.
_WORKER_ERRORS: tuple[type[Exception], ...] = (*ENGINE_ERRORS, OSError, psycopg_pool.PoolTimeout)


def load_migrations() -> list[Migration]:
    """Every migration file shipped in hub.storage.migrations, in version order."""
    try:
        directory = resources.files("hub.storage.migrations")
        return support_load_migrations(directory, "hub.storage.migrations")
    except MigrationError as exc:
        raise StorageError(str(exc)) from None


def connect(path: Path | str) -> SqliteDb:
    """Open (creating if needed) the SQLite database with the hub's pragmas, then migrate."""
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
    db = SqliteDb(conn)
    migrate(db)
    return db


def open_db(path: Path, url: str | None) -> Db:
    """One connection to the hub's database, migrated: the SQLite file `path`, or
    PostgreSQL when `url` (`[database] url`) names it. For the CLI and tests; the
    server uses `open_worker`."""
    if url is None:
        return connect(path)
    db = postgres.PgDb(postgres.connect(url))
    try:
        postgres.migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def open_worker(path: Path, url: str | None, pool_size: int) -> DbWorker:
    """The server's database worker (`open_db`'s choice of engine), migrated; on
    PostgreSQL with a pool of at most `pool_size` connections."""
    if url is None:
        return DbWorker(connect(path))
    pool = postgres.PgPool(url, pool_size)
    pool.open()
    try:
        with pool.db() as db:
            postgres.migrate(db)
    except BaseException:
        pool.close()
        raise
    return DbWorker(pool)


def schema_version(db: Db) -> int:
    if isinstance(db, postgres.PgDb):
        return postgres.schema_version(db)
    assert isinstance(db, SqliteDb)
    return support_schema_version(db.conn)


def latest_schema(engine: str) -> int:
    """The schema version a database of `engine` has with every migration applied."""
    found = postgres.load_migrations() if engine == POSTGRESQL else load_migrations()
    return found[-1].version


def migrate(db: SqliteDb, now: Callable[[], float] = time.time) -> list[int]:
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
def write(db: Db, *, durable: bool = True) -> Iterator[Db]:
    """One short write transaction; `durable` fsyncs the commit (the default)."""
    db.begin(durable=durable)
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.commit()


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or the user's quota) is full: SQLITE_FULL,
    PostgreSQL's disk_full (53100), or ENOSPC."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or (
            "database or disk is full" in str(exc)
        )
    if isinstance(exc, psycopg.errors.DiskFull):
        return True
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return False


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL is out of reach or busy for now, not that the
    request is wrong: a lost or refused connection (a failover), a deadlock or lock
    timeout between hub processes, a serialization failure. Asking again is safe.
    (SQLite's one writer holds its lock for the whole transaction: nothing of this.)"""
    return isinstance(
        exc,
        (
            psycopg.OperationalError,
            psycopg.errors.SerializationFailure,
            psycopg.errors.DeadlockDetected,
            psycopg.errors.LockNotAvailable,
            psycopg_pool.PoolTimeout,
        ),
    )


class DiskFullLog:
    """`storage.full` at most once per `interval` seconds, with how often it happened.

    Without a traceback or the exception's text: the operator needs to know that
    the disk is full and since when, not one line per refused request.
    """

    def __init__(
        self,
        interval: float = DISK_FULL_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        event: str = "storage.full",
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._event = event
        self._last: float | None = None
        self._count = 0

    def note(self, operation: str) -> None:
        self._count += 1
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return
        log.warning(
            self._event,
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


def run_group(db: Db, fns: Sequence[Callable[[Db], Any]]) -> list[Outcome]:
    """Run `fns` in one durable transaction, each in a savepoint of its own; commit once.

    A function that raises has its writes undone (ROLLBACK TO its savepoint)
    and its exception as its outcome; the others go on and commit. Returns
    only after the COMMIT, so no outcome is known before its writes are on
    disk. When the transaction as a whole cannot go on (BEGIN or COMMIT fails,
    or the engine ended the transaction itself, as SQLite may on SQLITE_FULL
    or an I/O error, or the connection to PostgreSQL is lost), it is rolled
    back and every function gets that exception: nothing of the group is
    stored, nobody hears "done".
    """
    outcomes: list[Outcome] = []
    try:
        db.begin(durable=True)
        for fn in fns:
            db.savepoint("grouped")
            try:
                outcomes.append(Outcome(value=fn(db)))
            except Exception as exc:  # the caller's own failure: answered to that caller
                if not db.in_transaction or unavailable(exc):
                    raise
                db.rollback_to("grouped")
                outcomes.append(Outcome(error=exc))
            db.release("grouped")
        db.commit()
    except Exception as exc:  # noqa: BLE001 -- the group's transaction failed: every caller hears it
        with contextlib.suppress(*ENGINE_ERRORS):
            db.rollback()
        return [Outcome(error=exc) for _ in fns]
    return outcomes


@dataclass
class _Durable:
    """A caller of `run_durable` waiting for its group commit."""

    fn: Callable[[Db], Any]
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
    """Runs functions of the database on dedicated threads, awaited from the loop.

    On SQLite (`SqliteDb`) one thread holds the one writer connection and a
    second thread a read-only connection. On PostgreSQL (`PgPool`) the writer
    thread and the reader threads each borrow a connection from the pool per
    job. Either way all writes of one process go through one thread, so the
    group commit of `run_durable` works the same on both.

    A function that fails because the disk is full raises `StorageFull` (a 507
    problem), logged by `full_log`; one that fails because the database is out
    of reach or busy raises `StorageUnavailable` (503), logged by `down_log`;
    nothing else is translated.
    """

    def __init__(
        self,
        db: SqliteDb | postgres.PgPool,
        full_log: DiskFullLog | None = None,
        max_group: int = MAX_GROUP,
    ) -> None:
        self.full_log = full_log or DiskFullLog()
        self.down_log = DiskFullLog(event="storage.unavailable")
        self.max_group = max_group
        self.db: SqliteDb | None = None
        self.pool: postgres.PgPool | None = None
        self._reader: Db | None = None
        readers = 1
        if isinstance(db, postgres.PgPool):
            self.pool = db
            readers = max(1, db.size - 1)
        else:
            self.db = db
            self._reader = _open_reader(db)
        self.engine = POSTGRESQL if self.pool is not None else SQLITE
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-db")
        self._read_pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="hub-db-read")
        self._lock = threading.Lock()
        self._waiting: list[_Durable] = []
        self._flush_queued = False

    def _call(self, fn: Callable[[Db], T], reader: bool = False) -> T:
        """On a database thread: `fn` with a connection."""
        if self.pool is not None:
            with self.pool.db() as db:
                return fn(db)
        assert self.db is not None
        return fn(self._reader if reader and self._reader is not None else self.db)

    async def run(
        self,
        fn: Callable[Concatenate[Db, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        loop = asyncio.get_running_loop()
        bound = functools.partial(fn_with_args, fn, args, kwargs)
        try:
            return await loop.run_in_executor(self._pool, self._call, bound)
        except _WORKER_ERRORS as exc:
            self._translate(fn, exc)
            raise

    async def read(
        self,
        fn: Callable[Concatenate[Db, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run a read-only `fn` on a reader thread and connection of its own.

        For the checks before a request's body is read (`hub.auth.precheck`)
        and for pages: they need not wait behind the fsync of uploads on the
        writer thread. On SQLite in WAL mode a reader sees the newest commit
        and never blocks the writer; the connection is `query_only`, so `fn`
        cannot write by mistake. An in-memory database (tests) has no second
        connection: `fn` runs on the writer thread then.
        """
        if self.pool is None and self._reader is None:
            return await self.run(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        bound = functools.partial(fn_with_args, fn, args, kwargs)
        try:
            return await loop.run_in_executor(
                self._read_pool, functools.partial(self._call, bound, True)
            )
        except _WORKER_ERRORS as exc:
            self._translate(fn, exc)
            raise

    async def run_durable(
        self,
        fn: Callable[Concatenate[Db, P], T],
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
            functools.partial(fn_with_args, fn, args, kwargs), loop.create_future(), loop
        )
        with self._lock:
            self._waiting.append(waiting)
            submit, self._flush_queued = not self._flush_queued, True
        if submit:
            self._pool.submit(self._flush)
        try:
            return cast(T, await waiting.future)
        except _WORKER_ERRORS as exc:
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
        fns = [w.fn for w in group]
        try:
            outcomes = self._call(lambda db: run_group(db, fns))
        except Exception as exc:  # noqa: BLE001 -- not even the rollback worked: nobody hears "done"
            outcomes = [Outcome(error=exc) for _ in group]
        for w, outcome in zip(group, outcomes, strict=True):
            # A caller whose loop is closed already waits for nothing.
            with contextlib.suppress(RuntimeError):
                w.loop.call_soon_threadsafe(_settle, w.future, outcome)

    def _translate(self, fn: Callable[..., Any], exc: BaseException) -> None:
        """Raise `StorageFull` for a full disk and `StorageUnavailable` for a database
        out of reach (both logged); return for anything else."""
        name = getattr(fn, "__name__", "query")
        if disk_full(exc):
            self.full_log.note(name)
            raise StorageFull() from None
        if unavailable(exc) and self.pool is not None:
            self.down_log.note(name)
            raise StorageUnavailable() from None

    def pool_stats(self) -> dict[str, int]:
        """The PostgreSQL pool's counters (empty on SQLite)."""
        return self.pool.stats() if self.pool is not None else {}

    def close(self) -> None:
        self._read_pool.shutdown(wait=True)
        if self._reader is not None:
            self._reader.close()
        self._pool.shutdown(wait=True)
        if self.db is not None:
            self.db.close()
        if self.pool is not None:
            self.pool.close()


def fn_with_args(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], db: Db) -> T:
    return fn(db, *args, **kwargs)


def _open_reader(db: SqliteDb) -> SqliteDb | None:
    """A read-only second connection to `db`'s file, or None for an in-memory database."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    path = row[2] if row is not None else ""
    if not path:
        return None
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only=ON")
    return SqliteDb(conn)


def rows(db: Db, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    return list(db.query(sql, params))
