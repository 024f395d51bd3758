"""The hub's database connection, one interface whichever engine is below it.

Every query of the hub is written once, with `?` parameters, in the part of
SQL that SQLite and PostgreSQL share (`INSERT ... ON CONFLICT`, `RETURNING`,
`count`, `sum`, joins, subqueries). Hub code sees only `Db`:

- `execute`, `executemany` and `query` run that SQL; `SqliteDb` hands it to
  sqlite3 unchanged, `PgDb` (`hub/storage/postgres.py`) rewrites the
  placeholders once per statement text (and `INSERT OR IGNORE`, the one
  SQLite spelling the hub keeps) and caches the result.
- `begin`, `commit`, `rollback` and the savepoints are the transaction; a
  `durable` transaction is on disk when `commit` returns (SQLite
  `synchronous=FULL`; PostgreSQL's default `synchronous_commit`), a
  non-durable one may be lost to a power cut but never half-applied.
- `lock(name, key)` serialises a critical section across every process on
  the database until the transaction ends: nothing on SQLite, where
  `BEGIN IMMEDIATE` already holds the one write lock; a transaction-scoped
  advisory lock on PostgreSQL, where several hub processes write at once.
- `notify(kind, items)` tells the other hub processes on the database, at
  commit, that a node has mail or a directory version is out (PostgreSQL's
  NOTIFY; nothing on SQLite, where one process serves).
- `any_of(column, values)` is the one place the two dialects differ in a
  query's text: "column is one of these values" as a single parameter.

The few statements only one engine has (SQLite's `PRAGMA quick_check`,
`INDEXED BY` on the damaged-file paths of `hub/relay.py`) are run only when
`engine` says so. Why two engines and not one: docs/operations.md.
"""

from __future__ import annotations

import abc
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Protocol

import psycopg

# What a failing query raises, whichever the engine: the hub catches these where
# it would have caught sqlite3.Error alone.
ENGINE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
# The same with OSError (a full disk outside the engine).
ENGINE_OR_OS_ERRORS: tuple[type[Exception], ...] = (*ENGINE_ERRORS, OSError)
# A row that cannot be written because an equal key is there (a unique index).
UNIQUE_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.IntegrityError,
    psycopg.errors.UniqueViolation,
)

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


class Cursor(Protocol):
    """What `Db.execute` returns: the DB-API cursor of either driver."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(abc.ABC):
    """One connection to the hub's database (module docstring)."""

    engine: ClassVar[str]

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """The rows of `sql` as dicts keyed by column name."""
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description]
        for row in cur.fetchall():
            yield dict(zip(names, row, strict=True))

    @property
    @abc.abstractmethod
    def in_transaction(self) -> bool: ...

    @abc.abstractmethod
    def begin(self, *, durable: bool) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None:
        """Commit; on failure roll back (the transaction cannot go on) and raise."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Roll back if a transaction is open (the engine may have ended it already)."""

    def savepoint(self, name: str) -> None:
        self.execute(f"SAVEPOINT {name}")

    def rollback_to(self, name: str) -> None:
        self.execute(f"ROLLBACK TO {name}")

    def release(self, name: str) -> None:
        self.execute(f"RELEASE {name}")

    @abc.abstractmethod
    def lock(self, name: str, key: str = "") -> None:
        """Hold `name`/`key` against every other process until this transaction ends."""

    @abc.abstractmethod
    def notify(self, kind: str, items: Iterable[str]) -> None:
        """Tell the other hub processes, once this transaction commits, about `kind`
        ("mail" for recipients, "directory" for a version): nothing on SQLite, one
        process; PostgreSQL's NOTIFY (`hub/storage/listen.py`)."""

    @abc.abstractmethod
    def any_of(self, column: str, values: Iterable[Any]) -> tuple[str, Any]:
        """`column` is one of `values`: the SQL condition and its one parameter."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteDb(Db):
    """A sqlite3 connection in autocommit mode (`isolation_level=None`)."""

    engine = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._durable = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def begin(self, *, durable: bool) -> None:
        # synchronous=FULL fsyncs the WAL before COMMIT returns; the connection's
        # default NORMAL survives a crash of the process, not a power cut.
        self._durable = durable
        if durable:
            self.conn.execute("PRAGMA synchronous=FULL")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._relax()
            raise

    def commit(self) -> None:
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            # A COMMIT that fails (a full disk) may leave the transaction open,
            # and every later BEGIN would fail with it.
            self._end()
            raise
        finally:
            self._relax()

    def rollback(self) -> None:
        try:
            self._end()
        finally:
            self._relax()

    def _end(self) -> None:
        # SQLite may have rolled back on its own (SQLITE_FULL can end the whole
        # transaction); a ROLLBACK then would replace the real error with
        # "no transaction is active".
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _relax(self) -> None:
        if self._durable:
            self._durable = False
            self.conn.execute("PRAGMA synchronous=NORMAL")

    def lock(self, name: str, key: str = "") -> None:
        # BEGIN IMMEDIATE took the database's one write lock: nothing else writes.
        return None

    def notify(self, kind: str, items: Iterable[str]) -> None:
        return None

    def any_of(self, column: str, values: Iterable[Any]) -> tuple[str, Any]:
        condition = f"{column} IN (SELECT value FROM json_each(?))"  # noqa: S608 -- the caller's fixed column name
        return condition, json.dumps(list(values))

    def close(self) -> None:
        self.conn.close()
