"""`mbe-hub db migrate --to URL`: a stopped hub's SQLite database copied into PostgreSQL.

For a hub that moves from one process on SQLite to PostgreSQL (docs/operations.md).
The hub must be stopped. In order:

1. The source file is opened without migrating it, and SQLite's write lock is taken
   (`BEGIN IMMEDIATE`) for the whole copy: a hub still running waits for it, or this
   refuses when the hub holds it, and the copy is one consistent state.
2. A source whose schema is not this version's latest is refused: the PostgreSQL
   schema is always the latest, so the two only match once this hub migrated the file.
3. The target is migrated (`postgres.migrate`), and the plan is derived from both
   schemas: every table is copied except those in `SKIPPED` (and SQLite's own
   `sqlite_*`), in foreign-key order (PostgreSQL's constraints); a table that only
   one side has, or whose columns differ, stops the command before anything is
   copied, rather than being left behind unnoticed.
4. One PostgreSQL transaction: the tables are locked, any row in them refuses the
   copy, each table is sent with binary COPY (psycopg's `cursor.copy`) in primary-key
   order with its ids as they are, each sequence (queue.seq, audit_log.id, the
   statistics ids) is moved past the highest id SQLite ever gave, the copy is
   verified, and only then committed. Any failure rolls all of it back: the target
   keeps the empty schema, and no row of the SQLite file changes.

The sequences go past `sqlite_sequence` too, not only past the highest id left:
`queue.seq` is AUTOINCREMENT, and a node's inbox cursor (`after`) must never see a
seq again that was given to a message acknowledged and deleted before the copy.

`queue_usage` is copied as it is, with the target's user triggers (those that
maintain it) disabled in the transaction (`ALTER TABLE ... DISABLE TRIGGER USER`),
and checked afterwards against the queue's bytes per sender. Letting the triggers
build it instead was rejected: a plpgsql call per queued row, and the rows of
senders at zero bytes would be missing, so the two databases would not be equal.
COPY rather than executemany: one stream per table, blobs sent as they are instead
of hex-escaped text.

Verification, per table: the row counts (SQLite's `count(*)`, the rows sent,
PostgreSQL's `count(*)`, the rows read back) and a SHA-256 over the rows in
primary-key order, each value encoded with its type (1, "1" and b"1" differ). Text
keys are ordered bytewise on both sides (SQLite's BINARY, PostgreSQL's "C"). The
source's digest is taken from the rows as SQLite gave them, before conversion, so
a conversion that changed a value is caught, not repeated on both sides.
"""

from __future__ import annotations

import graphlib
import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from hub.errors import HubError
from hub.storage import postgres
from hub.storage.db import latest_schema
from hub.storage.engine import SQLITE
from support.migrations import schema_version as sqlite_schema_version

# Tables that are not copied, and why. Names beginning `sqlite_` are SQLite's own
# (sqlite_sequence is read to place the sequences, sqlite_stat1 is planner data).
SKIPPED = {"schema_version": "each database records the migrations applied to it"}
# Rows read from SQLite at a time.
BATCH = 1000
# How long to wait for SQLite's write lock (a running hub's transaction) before refusing.
BUSY_TIMEOUT = 10.0
# The Python type a value of each PostgreSQL column type must have in SQLite.
_KINDS: dict[str, type] = {
    "int2": int,
    "int4": int,
    "int8": int,
    "text": str,
    "varchar": str,
    "bytea": bytes,
}


class MigrateError(HubError):
    """The copy was refused or failed; nothing of it was committed."""


@dataclass(frozen=True)
class Table:
    """A table to copy: its columns with their PostgreSQL types, primary key, and the
    column a sequence numbers (None when none does)."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    key: tuple[str, ...]
    sequenced: str | None


@dataclass(frozen=True)
class Copied:
    """What `migrate` did: rows per table in the order copied, and how long it took."""

    source: Path
    target: str  # the URL without its password
    rows: tuple[tuple[str, int], ...]
    seconds: float


def migrate(
    source: Path,
    url: str,
    *,
    busy_timeout: float = BUSY_TIMEOUT,
    progress: Callable[[str], None] = lambda _line: None,
    clock: Callable[[], float] = time.monotonic,
) -> Copied:
    """Copy the hub database `source` into the empty PostgreSQL database at `url`,
    verified, in one transaction (module docstring); raise MigrateError otherwise."""
    if not postgres.is_postgres_url(url):
        raise MigrateError("--to must be a PostgreSQL URL: postgresql://user@host:5432/dbname")
    target = postgres.redacted(url)
    started = clock()
    with _errors(source, url):
        src = _lock_source(source, busy_timeout)
        try:
            _check_schema(src, source)
            pg = postgres.connect(url)
            try:
                postgres.migrate(postgres.PgDb(pg))
                tables = plan(src, pg)
                steps = [
                    f"copying {len(tables)} tables from {source} to {target}",
                    "verifying: row counts and SHA-256 of every table",
                ]
                rows = _copy(src, pg, tables, lambda: progress(steps.pop(0)))
            finally:
                pg.close()
        finally:
            src.close()  # ends the transaction, which wrote nothing
    return Copied(source, target, tuple(rows), clock() - started)


def summary(copied: Copied, config: Path) -> list[str]:
    """What to tell the operator after a copy: rows per table, time, what next."""
    lines = [f"copied and verified in {copied.seconds:.1f} s (rows and SHA-256 of every table):"]
    width = max((len(name) for name, _ in copied.rows), default=0)
    lines += [f"  {name:<{width}}  {count:>10,}" for name, count in sorted(copied.rows)]
    lines += [
        "next:",
        f"  1. in {config}, set",
        "       [database]",
        f'       url = "{_without_password(copied.target)}"',
        "     (the password in the hub user's ~/.pgpass, not in hub.toml)",
        "  2. start the hub processes (mbe-hub serve)",
        f"  3. keep {copied.source} as it is: the fallback (remove the url again) until the",
        "     new setup runs; nothing written to PostgreSQL from now on will be in it",
    ]
    return lines


def plan(src: sqlite3.Connection, pg: psycopg.Connection[Any]) -> list[Table]:
    """The tables to copy, parents before the tables that refer to them."""
    lite = {
        name: {row[1] for row in src.execute(f"PRAGMA table_info({_quote(name)})")}
        for (name,) in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_") and name not in SKIPPED
    }
    columns: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, udt, sequenced in pg.execute(_PG_COLUMNS):
        if table not in SKIPPED:
            columns.setdefault(table, []).append((column, udt, sequenced))
    keys: dict[str, list[str]] = {}
    for table, column in pg.execute(_PG_KEYS):
        keys.setdefault(table, []).append(column)
    only_here = sorted(lite.keys() - columns.keys())
    only_there = sorted(columns.keys() - lite.keys())
    if only_here or only_there:
        raise MigrateError(
            "the two schemas differ, this version cannot copy them: tables only in the"
            f" SQLite file: {', '.join(only_here) or '-'}; only in PostgreSQL:"
            f" {', '.join(only_there) or '-'} (give the hub a database of its own)"
        )
    tables: dict[str, Table] = {}
    for name, cols in columns.items():
        if {c[0] for c in cols} != lite[name]:
            raise MigrateError(f"table {name} has other columns in SQLite than in PostgreSQL")
        unknown = sorted({c[1] for c in cols} - _KINDS.keys())
        if unknown:
            raise MigrateError(
                f"table {name} has a column type this version cannot copy: {unknown}"
            )
        if name not in keys:
            raise MigrateError(f"table {name} has no primary key to order and compare it by")
        sequenced = [c[0] for c in cols if c[2]]
        tables[name] = Table(
            name,
            tuple(c[0] for c in cols),
            tuple(c[1] for c in cols),
            tuple(keys[name]),
            sequenced[0] if sequenced else None,
        )
    parents: dict[str, set[str]] = {name: set() for name in sorted(tables)}
    for child, parent in pg.execute(_PG_FOREIGN_KEYS):
        if child in parents and parent in parents and child != parent:
            parents[child].add(parent)
    try:
        order = list(graphlib.TopologicalSorter(parents).static_order())
    except graphlib.CycleError:
        raise MigrateError(
            "the tables' foreign keys form a cycle; no order to copy them in"
        ) from None
    return [tables[name] for name in order]


# Base tables of the current schema: name, column, type, whether a sequence numbers it.
_PG_COLUMNS = """
SELECT c.table_name, c.column_name, c.udt_name,
       pg_get_serial_sequence(quote_ident(c.table_name), c.column_name) IS NOT NULL
FROM information_schema.columns c
JOIN information_schema.tables t
  ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
ORDER BY c.table_name, c.ordinal_position
"""
_PG_KEYS = """
SELECT tc.table_name, k.column_name
FROM information_schema.table_constraints tc
JOIN information_schema.key_column_usage k
  ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name
 AND k.table_name = tc.table_name
WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema()
ORDER BY tc.table_name, k.ordinal_position
"""
_PG_FOREIGN_KEYS = """
SELECT child.relname, parent.relname
FROM pg_constraint k
JOIN pg_class child ON child.oid = k.conrelid
JOIN pg_class parent ON parent.oid = k.confrelid
WHERE k.contype = 'f' AND child.relnamespace = current_schema()::regnamespace
"""
_PG_TRIGGERED = """
SELECT DISTINCT c.relname
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace
ORDER BY c.relname
"""
# Senders whose counted bytes differ from what they have queued.
_USAGE_DIFFERS = """
SELECT coalesce(u.sender, q.sender), coalesce(u.bytes, 0), coalesce(q.bytes, 0)
FROM queue_usage u
FULL JOIN (SELECT sender, sum(octet_length(envelope)) AS bytes FROM queue GROUP BY sender) q
  ON q.sender = u.sender
WHERE coalesce(u.bytes, 0) <> coalesce(q.bytes, 0)
LIMIT 1
"""


def _lock_source(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """The SQLite file, opened read-write without creating or migrating it, with its
    write lock held until the connection closes."""
    if not path.is_file():
        raise MigrateError(f"no hub database at {path}")
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=busy_timeout
    )
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        conn.close()
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
            raise MigrateError(
                f"{path} is being written by another process: stop the hub (every"
                " `mbe-hub serve` on this data directory) and run this again"
            ) from None
        raise
    return conn


def _check_schema(src: sqlite3.Connection, path: Path) -> None:
    found = sqlite_schema_version(src)
    latest = latest_schema(SQLITE)
    if found == 0:
        raise MigrateError(f"{path} is not a hub database (it has no schema version)")
    if found < latest:
        raise MigrateError(
            f"{path} has schema version {found}, this hub's is {latest}: let this version"
            " migrate it first (with no [database] url in hub.toml yet, run"
            " `mbe-hub site list --dir DIR` or start the hub once), then run this again"
        )
    if found > latest:
        raise MigrateError(
            f"{path} has schema version {found}, newer than this hub ({latest});"
            " install the newer version"
        )


def _copy(
    src: sqlite3.Connection,
    pg: psycopg.Connection[Any],
    tables: list[Table],
    step: Callable[[], None],
) -> list[tuple[str, int]]:
    """Copy, verify and commit in one transaction; rows per table. `step` is called
    when the copy starts and when the verification does."""
    names = sql.SQL(", ").join(sql.Identifier(t.name) for t in tables)
    pg.execute("BEGIN")
    try:
        # Nobody writes these tables while the transaction checks that they are empty.
        pg.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(names))
        held = [t.name for t in tables if _has_rows(pg, t.name)]
        if held:
            raise MigrateError(
                f"the target database is not empty: {', '.join(held)} already hold rows;"
                " migrate into a new, empty database (nothing was copied)"
            )
        step()
        triggered = [name for (name,) in pg.execute(_PG_TRIGGERED)]
        _triggers(pg, triggered, "DISABLE")
        sent: dict[str, tuple[int, bytes]] = {}
        for table in tables:
            with _in_table(table.name):
                sent[table.name] = _send(src, pg, table)
        _move_sequences(src, pg, tables)
        _triggers(pg, triggered, "ENABLE")
        step()
        for table in tables:
            with _in_table(table.name):
                _verify(src, pg, table, sent[table.name])
        _check_queue_usage(pg)
        pg.execute("COMMIT")
    except BaseException:
        # A lost connection has rolled back already; its error is the one to report.
        if not pg.closed and not pg.broken:
            with suppress(psycopg.Error):
                pg.execute("ROLLBACK")
        raise
    return [(t.name, sent[t.name][0]) for t in tables]


def _has_rows(pg: psycopg.Connection[Any], table: str) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
    row = pg.execute(query).fetchone()
    return bool(row and row[0])


def _triggers(pg: psycopg.Connection[Any], tables: Iterable[str], what: str) -> None:
    verb = sql.SQL(what)
    for name in tables:
        pg.execute(sql.SQL("ALTER TABLE {} {} TRIGGER USER").format(sql.Identifier(name), verb))


def _send(src: sqlite3.Connection, pg: psycopg.Connection[Any], table: Table) -> tuple[int, bytes]:
    """COPY one table's rows to PostgreSQL; their count and digest as SQLite gave them."""
    digest = _Digest()
    convert = _converter(table)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns))
    )
    with pg.cursor() as cur, cur.copy(copy_in) as copy:
        copy.set_types(list(table.types))
        rows = src.execute(_sqlite_select(table))
        while batch := rows.fetchmany(BATCH):
            for row in batch:
                digest.add(row)
                copy.write_row(convert(row))
    return digest.rows, digest.value()


def _sqlite_select(table: Table) -> str:
    columns = ", ".join(map(_quote, table.columns))
    order = ", ".join(
        f"{_quote(c)} COLLATE BINARY" if _is_text(table, c) else _quote(c) for c in table.key
    )
    return f"SELECT {columns} FROM {_quote(table.name)} ORDER BY {order}"  # noqa: S608 -- names from the schema, quoted


def _converter(table: Table) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A row as SQLite gave it to a row PostgreSQL takes: blobs as bytes, and a value
    of another type than its column's refused (SQLite keeps what it was given)."""
    kinds = [_KINDS[t] for t in table.types]

    def convert(row: Sequence[Any]) -> tuple[Any, ...]:
        out = []
        for column, kind, value in zip(table.columns, kinds, row, strict=True):
            if value is None or type(value) is kind:
                out.append(value)
            elif kind is bytes and isinstance(value, memoryview):
                out.append(bytes(value))
            else:
                raise MigrateError(
                    f"{table.name}.{column} holds a {type(value).__name__} where PostgreSQL"
                    f" takes {kind.__name__}: the file holds what this hub never writes"
                    " (nothing was copied)"
                )
        return tuple(out)

    return convert


def _move_sequences(
    src: sqlite3.Connection, pg: psycopg.Connection[Any], tables: list[Table]
) -> None:
    """Each sequence past the highest id in its table and the highest SQLite ever gave."""
    given: dict[str, int] = {}
    if src.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        given = {
            name: int(seq) for name, seq in src.execute("SELECT name, seq FROM sqlite_sequence")
        }
    for table in tables:
        if table.sequenced is None:
            continue
        column = sql.Identifier(table.sequenced)
        top_query = sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(
            column, sql.Identifier(table.name)
        )
        row = pg.execute(top_query).fetchone()
        following = max(int(row[0]) if row else 0, given.get(table.name, 0)) + 1
        pg.execute(
            "SELECT setval(pg_get_serial_sequence(%s, %s), %s, false)",
            (sql.Identifier(table.name).as_string(pg), table.sequenced, following),
        )


def _verify(
    src: sqlite3.Connection, pg: psycopg.Connection[Any], table: Table, sent: tuple[int, bytes]
) -> None:
    quoted = _quote(table.name)
    (source_rows,) = src.execute(f"SELECT count(*) FROM {quoted}").fetchone()  # noqa: S608 -- a name from the schema, quoted
    count_query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))
    row = pg.execute(count_query).fetchone()
    target_rows = int(row[0]) if row else -1
    digest = _Digest()
    order = sql.SQL(", ").join(
        sql.SQL('{} COLLATE "C"' if _is_text(table, c) else "{}").format(sql.Identifier(c))
        for c in table.key
    )
    copy_out = sql.SQL("COPY (SELECT {} FROM {} ORDER BY {}) TO STDOUT (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, table.columns)), sql.Identifier(table.name), order
    )
    with pg.cursor() as cur, cur.copy(copy_out) as copy:
        copy.set_types(list(table.types))
        for got in copy.rows():
            digest.add(got)
    counts = {source_rows, sent[0], target_rows, digest.rows}
    if len(counts) != 1:
        raise MigrateError(
            f"verification failed: table {table.name} has {source_rows} rows in SQLite,"
            f" {target_rows} in PostgreSQL; nothing was copied"
        )
    if digest.value() != sent[1]:
        raise MigrateError(
            f"verification failed: the rows of table {table.name} differ between SQLite and"
            " PostgreSQL (SHA-256); nothing was copied"
        )


def _check_queue_usage(pg: psycopg.Connection[Any]) -> None:
    row = pg.execute(_USAGE_DIFFERS).fetchone()
    if row is not None:
        sender, counted, queued = row
        raise MigrateError(
            f"verification failed: queue_usage counts {counted} bytes for sender {sender},"
            f" who has {queued} bytes queued; nothing was copied"
        )


class _Digest:
    """SHA-256 over rows, each value encoded with its type, and how many rows."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.rows = 0

    def add(self, row: Iterable[Any]) -> None:
        parts: list[bytes] = []
        for value in row:
            if value is None:
                parts.append(b"N")
            elif type(value) is int:
                parts.append(b"I%d;" % value)
            elif isinstance(value, str):
                data = value.encode("utf-8", "surrogatepass")
                parts += (b"T%d:" % len(data), data)
            elif isinstance(value, bytes | memoryview):
                data = bytes(value)
                parts += (b"B%d:" % len(data), data)
            else:  # nothing PostgreSQL gives back: never equal to its side
                data = repr(value).encode("utf-8", "backslashreplace")
                parts += (b"?%d:" % len(data), data)
        self._hash.update(b"".join(parts))
        self.rows += 1

    def value(self) -> bytes:
        return self._hash.digest()


def _is_text(table: Table, column: str) -> bool:
    return _KINDS[table.types[table.columns.index(column)]] is str


def _quote(name: str) -> str:
    """An SQLite identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _in_table(name: str) -> Iterator[None]:
    """Name the table in an engine's error while it is copied or compared."""
    try:
        yield
    except (psycopg.Error, sqlite3.Error) as exc:
        raise MigrateError(f"table {name}: {_one_line(exc)}; nothing was copied") from exc


@contextmanager
def _errors(source: Path, url: str) -> Iterator[None]:
    """Every failure as one line, never with the URL's password."""
    try:
        yield
    except HubError as exc:
        raise MigrateError(_scrub(str(exc), url)) from None
    except psycopg.Error as exc:
        where = postgres.redacted(url)
        raise MigrateError(_scrub(f"{where}: {_one_line(exc)}; nothing was copied", url)) from None
    except sqlite3.Error as exc:
        raise MigrateError(f"{source}: {_one_line(exc)}; nothing was copied") from None


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _scrub(text: str, url: str) -> str:
    """`text` without the password of `url`, should an error have quoted it."""
    password = urlsplit(url).password
    for secret in (password, unquote(password or "")):
        if secret:
            text = text.replace(secret, "***")
    return text


def _without_password(url: str) -> str:
    """`url` as hub.toml should hold it: the redacted password removed altogether."""
    return url.replace(":***@", "@", 1)
