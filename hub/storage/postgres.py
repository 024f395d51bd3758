"""The hub on PostgreSQL: connections, the SQL rewrite, the pool, migrations.

`PgDb` runs the hub's shared SQL (`hub/storage/engine.py`) on a psycopg 3
connection in autocommit mode, so `begin`/`commit` are the only transaction
boundaries, as on SQLite. Parameters are bound on the server (psycopg's
default cursor): the values travel apart from the statement, blobs as bytes,
and a statement run often is prepared once. The shared SQL therefore gives
every parameter a type PostgreSQL can infer: a parameter only tested for NULL
is written `CAST(? AS TEXT) IS NULL`, which SQLite reads the same. (Binding
on the client, as psycopg2 did, cost the upload path about half its time in
building statement texts with hex-encoded envelopes; docs/performance.md.)

`sum()` of integers is `numeric` in PostgreSQL; a loader gives it back as a
Python int, as SQLite does, so no caller meets a Decimal.

The server runs every job on a connection of a `psycopg_pool.ConnectionPool`
(`PgPool`): the pool checks a connection before lending it and opens a new
one when the server went away (a failover), so one restart of the database
costs the requests in flight, not the process.

Migrations are the files `migrations_pg/NNNN_name.sql`, applied in order, each
in one transaction with its row in `schema_version`, under an advisory lock so
that two hub processes starting together apply each once.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool

from hub.errors import StorageError
from support.migrations import Migration, MigrationError, latest_version
from support.migrations import load_migrations as support_load_migrations

from .engine import POSTGRESQL, Db

# How long a query may wait for a row lock or a connection before it fails (ms).
LOCK_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10
# How long a job waits for a connection of the pool before it fails (503): while
# the database is out of reach, a request is answered within this time.
POOL_WAIT_S = 5.0
# The channel of the hub's NOTIFY messages (hub/storage/listen.py).
CHANNEL = "mbe_hub"

# PostgreSQL's limit on a NOTIFY payload is 8000 bytes; stay well below it.
MAX_PAYLOAD = 7000
# The advisory lock every migration runs under (any constant; "mbe-hub" in ASCII).
MIGRATION_LOCK = 0x6D62652D687562
SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version"
    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)"
)


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in ("postgresql", "postgres")


def redacted(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


_PLACEHOLDER = re.compile(r"'[^']*'|\?|%")
_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def translate(sql: str, bound: bool = True) -> str:
    """The hub's SQL as psycopg wants it: with parameters (`bound`), `%s`
    placeholders and every other `%` doubled; without, as it is (psycopg then
    reads no placeholders).

    `INSERT OR IGNORE INTO` becomes `INSERT INTO ... ON CONFLICT DO NOTHING`
    (before a `RETURNING`). Quoted literals are left as they are.
    """

    def swap(m: re.Match[str]) -> str:
        found = m.group(0)
        if found == "?":
            return "%s"
        if found == "%":
            return "%%"
        return found.replace("%", "%%")

    out = _PLACEHOLDER.sub(swap, sql) if bound else sql
    if _OR_IGNORE.search(out):
        out = _OR_IGNORE.sub("INSERT INTO", out, count=1)
        ret = _RETURNING.search(out)
        if ret is None:
            out = out.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
        else:
            out = out[: ret.start()] + "ON CONFLICT DO NOTHING " + out[ret.start() :]
    return out


class _IntegralNumeric(Loader):
    """`numeric` as int when it has no fraction (sums of integer columns)."""

    def load(self, data: Any) -> int | Decimal:
        text = bytes(data).decode("ascii")
        try:
            return int(text)
        except ValueError:
            return Decimal(text)


def configure(conn: psycopg.Connection[Any]) -> None:
    """What every hub connection needs: autocommit, the numeric loader, the lock timeout."""
    conn.autocommit = True
    conn.adapters.register_loader("numeric", _IntegralNumeric)
    conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


def connect(url: str) -> psycopg.Connection[Any]:
    """One connection for the CLI and tests; the server uses `PgPool`."""
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            cursor_factory=psycopg.Cursor,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="mbe-hub",
        )
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to {redacted(url)}: {_one_line(exc)}") from None
    configure(conn)
    return conn


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def new_tag() -> str:
    """A name for one server's notices, so that it skips its own (it told its own
    sockets already): one per `PgPool`, i.e. per `mbe-hub serve` process."""
    return f"{os.getpid():x}.{os.urandom(4).hex()}"


def notice_payloads(tag: str, kind: str, items: Iterable[str]) -> list[str]:
    """`kind` and `items` as NOTIFY payloads: "<tag> <kind> <item> <item> ...",
    as few as fit under MAX_PAYLOAD each (items hold no spaces: node ids, numbers)."""
    head = f"{tag} {kind}"
    out: list[str] = []
    line = head
    for item in sorted(set(items)):
        if len(line) + 1 + len(item) > MAX_PAYLOAD and line != head:
            out.append(line)
            line = head
        line += " " + item
    if line != head:
        out.append(line)
    return out


class PgDb(Db):
    """The hub's `Db` on one psycopg connection (module docstring)."""

    engine = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any], tag: str = "cli") -> None:
        self.conn = conn
        self.tag = tag

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if not params:
            return self.conn.execute(translate(sql, bound=False))
        return self.conn.execute(translate(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(translate(sql), rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def begin(self, *, durable: bool) -> None:
        self.conn.execute("BEGIN")
        if not durable:
            # Like SQLite's synchronous=NORMAL: a power cut may lose this
            # commit, a crash of the server may not, and nothing is half-applied.
            self.conn.execute("SET LOCAL synchronous_commit = off")

    def commit(self) -> None:
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        if self.conn.closed or self.conn.broken:
            return
        if self.in_transaction:
            self.conn.execute("ROLLBACK")

    def lock(self, name: str, key: str = "") -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (name, key))

    def notify(self, kind: str, items: Iterable[str]) -> None:
        for payload in notice_payloads(self.tag, kind, items):
            self.conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def any_of(self, column: str, values: Iterable[Any]) -> tuple[str, Any]:
        return f"{column} = ANY(?)", list(values)

    def close(self) -> None:
        self.conn.close()


# What psycopg_pool's get_stats() reports: levels now, and counts since start.
POOL_GAUGES = ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting")
POOL_COUNTERS = (
    "requests_num",
    "requests_queued",
    "requests_wait_ms",
    "requests_errors",
    "returns_bad",
    "connections_num",
    "connections_ms",
    "connections_errors",
    "connections_lost",
    "usage_ms",
)


class PgPool:
    """The server's connections: one pool per process, a `PgDb` per job."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self.tag = new_tag()
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=size,
            kwargs={
                "cursor_factory": psycopg.Cursor,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": "mbe-hub",
            },
            configure=configure,
            check=ConnectionPool.check_connection,
            timeout=POOL_WAIT_S,
            name="mbe-hub",
            open=False,
        )

    def open(self) -> None:
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 -- the pool's own timeout error names no cause
            self.pool.close()
            raise StorageError(
                f"cannot connect to {redacted(self.url)}: {_one_line(exc)}"
            ) from None

    @contextmanager
    def db(self) -> Iterator[PgDb]:
        with self.pool.connection() as conn:
            db = PgDb(conn, self.tag)
            try:
                yield db
            finally:
                # A job that left a transaction open (it raised between begin
                # and commit) must not hand it to the next job.
                db.rollback()

    def stats(self) -> dict[str, int]:
        """psycopg_pool's figures; the counters it leaves out while they are 0, as 0."""
        return {**dict.fromkeys(POOL_GAUGES + POOL_COUNTERS, 0), **self.pool.get_stats()}

    def close(self) -> None:
        self.pool.close()


def load_migrations() -> list[Migration]:
    """Every migration file shipped in hub.storage.migrations_pg, in version order."""
    try:
        directory = resources.files("hub.storage.migrations_pg")
        return support_load_migrations(directory, "hub.storage.migrations_pg")
    except MigrationError as exc:
        raise StorageError(str(exc)) from None


def schema_version(db: PgDb) -> int:
    row = db.execute("SELECT to_regclass('schema_version')").fetchone()
    if row is None or row[0] is None:
        return 0
    found = db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(found[0]) if found is not None else 0


def migrate(db: PgDb, now: Callable[[], float] = time.time) -> list[int]:
    """Apply the migrations this database lacks, one transaction each; their versions."""
    migrations = load_migrations()
    latest = latest_version(migrations)
    applied: list[int] = []
    while True:
        db.begin(durable=True)
        try:
            db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            db.execute(SCHEMA_TABLE)
            current = schema_version(db)
            if current > latest:
                raise StorageError(
                    f"the database has schema version {current}, newer than this software"
                    f" ({latest}); install the newer version"
                )
            if current == latest:
                db.rollback()
                return applied
            mig = next(m for m in migrations if m.version > current)
            try:
                db.conn.execute(mig.sql.encode("utf-8"))
            except psycopg.Error as exc:
                raise StorageError(
                    f"migration {mig.name} failed ({_one_line(exc)}); nothing of it was applied"
                ) from None
            db.execute(
                "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
                (mig.version, mig.name, int(now())),
            )
        except BaseException:
            db.rollback()
            raise
        db.commit()
        applied.append(mig.version)
