"""Opening the hub database, applying migrations, and running queries off the loop.

One process-wide writer connection in WAL mode. Its default is
`synchronous=NORMAL` (a commit survives a crash of the hub process); work that
backs an acknowledgement to a node (uploads, enrollment, site changes) commits
with `synchronous=FULL`, which fsyncs the WAL before COMMIT returns.

The server runs every query on one dedicated thread (`DbWorker`), so the
connection is never used concurrently and the event loop never waits on disk.
The CLI may touch the same file from another process while the server runs;
SQLite's file locks plus `BEGIN IMMEDIATE` and a busy timeout make that safe.

Migrations are the files `migrations/NNNN_name.sql`, applied in order, each in
one transaction, recorded in `schema_version`. Other parts of the hub add their
own numbered files; the loader needs no list.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlite_utils

from hub.errors import StorageError

P = ParamSpec("P")
T = TypeVar("T")
_MIGRATION = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Every migration file shipped in hub.storage.migrations, in version order."""
    found: dict[int, Migration] = {}
    for entry in resources.files("hub.storage.migrations").iterdir():
        m = _MIGRATION.fullmatch(entry.name)
        if m is None:
            continue
        version = int(m.group(1))
        if version in found:
            raise StorageError(f"two migrations share the number {version:04d}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (triggers included) without committing."""
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
        raise StorageError("a migration ends with an incomplete statement")


def connect(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) the database with the hub's pragmas, then migrate."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    db = sqlite_utils.Database(conn, execute_plugins=False)
    migrate(db)
    return db


def schema_version(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database, now: Callable[[], float] = time.time) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied."""
    conn = db.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)"
    )
    migrations = load_migrations()
    known = migrations[-1].version if migrations else 0
    applied: list[int] = []
    with write(db):
        current = schema_version(db)
        if current > known:
            raise StorageError(
                f"the database has schema version {current}, newer than this hub ({known})"
            )
        for mig in migrations:
            if mig.version <= current:
                continue
            for stmt in _statements(mig.sql):
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
                (mig.version, mig.name, int(now())),
            )
            applied.append(mig.version)
    return applied


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
