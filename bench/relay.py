"""Relay throughput of the hub on loopback, next to a bare SQLite or PostgreSQL ceiling.

Starts `mbe-hub serve` as a subprocess on 127.0.0.1, enrolls simulated nodes
(half send, half receive) and measures, for each queue size N (`--sizes`,
issue 11 asks for 20 000 and 100 000):

* ingest: N envelopes uploaded in batches by all senders at once, the queue
  growing from empty to N; every upload is answered only after its durable
  commit (fsync), as for a real node;
* drain: the recipients fetch and acknowledge all N, the queue going from N
  back to empty.

Each figure is printed next to its ceiling, measured in the same run right
after it on the same file system, and the ratio hub / ceiling:

* ingest ceiling: bare SQLite in this process (WAL, synchronous=FULL) inserting
  the same envelope bytes into a table of (integer key, blob), one transaction
  of `--batch` rows each: no HTTP, signatures, checks, indexes or bookkeeping;
* drain ceiling: the same table emptied `--batch` rows at a time, each read and
  deleted by key in one transaction with synchronous=NORMAL, the durability of
  the hub's acks (an ack lost to a power cut only means a message delivered
  twice, docs/hub.md).

With `--engine postgresql` the hub keeps its state in PostgreSQL (`[database]
url` in its hub.toml): the empty database `--database-url` names, or without it
one in a throwaway cluster started for the run (tests/pg.py: PostgreSQL as
installed, fsync on, stopped at the end). The ceilings then run on the same
server, in the same database, with bare psycopg (server-side binding) on a
table of (bigint identity key, bytea) besides the hub's:

* ingest ceiling: COPY FROM STDIN (binary) of `--batch` rows per transaction,
  each committed with the server's `synchronous_commit = on` (WAL flushed
  before COMMIT returns, as the hub's upload commit). The same batches
  inserted with executemany (pipelined) are printed next to it;
* drain ceiling: `--batch` rows per transaction read in key order and deleted
  by key (`= ANY`), with `SET LOCAL synchronous_commit = off` as the hub's
  acks (`PgDb.begin(durable=False)`).

The hub's tables stay in a database given with `--database-url`; the
ceiling's are dropped. Warnings and errors the hub logs are counted and the
first ones printed; `--hub-log FILE` keeps all its output.

The ingest is also printed next to a second ceiling on either engine, the
schema ceiling: the same envelope rows (msg_id, sender, recipient, expires,
received, env_hash, envelope) stored in the hub's own schema, made by the
hub's own migrations (the queue with its unique id index, inbox and expiry
indexes, the metadata log with its key and time index, the per-sender byte
count `queue_usage`), written by the hub's own statements
(`hub.relay.store_rows`, the very function an upload calls), in the same
batches of one sender and the same durable commits (SQLite
`synchronous=FULL`; PostgreSQL `synchronous_commit` as the server has it), in
this process. On SQLite it is a file of its own; on PostgreSQL a schema of its
own (`bench_relay_schema_ceiling`, on `search_path`) in the hub's database,
dropped at the end. No HTTP, signatures, nonces, decoding, checks or thread
hops: what the database alone needs for what the hub promises. It splits the
hub's loss against the bare ceiling in two:

* "bare/schema" (schema ceiling / bare ceiling): what the tables behind the
  hub's guarantees cost the database: idempotent uploads and the refusal of a
  reused id also after delivery (the unique id index and the metadata log),
  acks by id, per-recipient order (the inbox index), expiry (its index), the
  exact per-sender quota (`queue_usage`), the metadata log itself. A hub on
  this schema cannot get above it, whatever its Python does;
* "hub/schema" (hub / schema ceiling): what the hub's own work costs on top:
  HTTP, the request signature and its nonce, decoding and checking each
  envelope, the duplicate and recipient lookups, thread hops and the GIL.

The envelopes are outer envelopes as the hub sees them, with ids made as nodes
make them (`node.clock.new_message_id`, time-ordered; `--random-ids` for the
128-bit random ids of older nodes) and random ciphertext of the length a
sealed receipt has: the hub never opens the ciphertext, and sealing 100 000
real messages would take the bench a minute.

Usage: .venv/bin/python -m bench.relay [--sizes 20000,100000] [--nodes 8]
       [--batch 100] [--random-ids] [--quick]
       [--engine sqlite|postgresql] [--database-url URL] [--hub-log FILE]
(run as a module: a script run from bench/ would see bench/protocol.py as `protocol`)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import aiohttp
import psycopg

from hub import relay
from hub.keyfile import read_keys, write_keys
from hub.settings import default_config, load_settings
from hub.sites import add_site
from hub.storage.db import connect, open_db
from hub.storage.engine import Db
from hub.storage.postgres import PgDb, is_postgres_url, redacted
from hub.storage.postgres import connect as pg_connect
from hub.storage.postgres import migrate as pg_migrate
from node.clock import new_message_id
from protocol.encoding import pack, unpack
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import Envelope, InnerMessage, seal
from protocol.keys import PrivateKeys
from protocol.payloads import Receipt
from protocol.requests import sign_request
from support.clock import SystemRandom
from support.tomlfile import toml_string

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (20_000, 100_000)
QUICK_SIZES = (2_000, 10_000)
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
ENGINES = (SQLITE, POSTGRESQL)
# Hub log lines at these levels are counted and the first ones printed.
NOTABLE_LEVELS = frozenset({"warning", "error", "critical", "exception"})
SHOWN_LOG_LINES = 5


@dataclass(frozen=True)
class SimNode:
    node_id: str
    keys: PrivateKeys


def signed_headers(node: SimNode, method: str, path: str, body: bytes) -> dict[str, str]:
    return sign_request(
        method,
        path,
        body,
        node_id=node.node_id,
        keys=node.keys,
        timestamp=int(time.time()),
        nonce=os.urandom(16).hex(),
    )


@dataclass
class ServerLog:
    """What a server wrote: every line to `copy` if given; the notable ones kept."""

    copy: TextIO | None = None
    notable: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        if self.copy is not None:
            self.copy.write(line if line.endswith("\n") else line + "\n")
        if notable(line):
            self.notable.append(line.rstrip("\n"))


def notable(line: str) -> bool:
    """Whether a line of the hub's output is a warning or an error: a JSON log line
    at such a level, or anything that is not a JSON log line (a traceback)."""
    text = line.strip()
    if not text:
        return False
    try:
        record = json.loads(text)
    except ValueError:
        return True
    if not isinstance(record, dict):
        return True
    return str(record.get("level", "")).lower() in NOTABLE_LEVELS


class Server:
    """A server subprocess whose port is read from its first line containing `marker`."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, log: ServerLog) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self._drain = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.log.add(line.decode(errors="replace"))

    @classmethod
    async def start(cls, args: list[str], marker: str, log: ServerLog | None = None) -> Server:
        log = log if log is not None else ServerLog()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode(
                errors="replace"
            )
            if not line:
                raise RuntimeError("server exited before listening:\n" + "\n".join(log.notable))
            log.add(line)
            if marker in line:
                return cls(proc, int(json.loads(line)["port"]), log)

    async def stop(self) -> None:
        self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), timeout=30)
        await self._drain


def sealed_length(sender: SimNode, recipient: SimNode) -> int:
    """The ciphertext length of a sealed receipt (the 1 KiB bucket)."""
    now = int(time.time())
    inner = InnerMessage(
        msg_id=os.urandom(16).hex(),
        sender=sender.node_id,
        recipient=recipient.node_id,
        created=now,
        expires=now + 86400,
        payload=Receipt(of_msg_id=os.urandom(16).hex(), received=now),
    )
    sealed = seal(inner, sender.keys, recipient.keys.public, ephemeral_secret=os.urandom(32))
    return len(sealed.ciphertext)


def make_envelopes(
    senders: list[SimNode], recipients: list[SimNode], count: int, *, random_ids: bool
) -> dict[str, list[bytes]]:
    """Outer envelopes, round-robin from senders to recipients, by sender."""
    now = int(time.time())
    length = sealed_length(senders[0], recipients[0])
    random = SystemRandom()
    out: dict[str, list[bytes]] = {s.node_id: [] for s in senders}
    for i in range(count):
        s = senders[i % len(senders)]
        r = recipients[i % len(recipients)]
        msg_id = os.urandom(16).hex() if random_ids else new_message_id(random, now)
        env = Envelope(msg_id, s.node_id, r.node_id, now + 86400, os.urandom(length))
        out[s.node_id].append(env.encode())
    return out


async def upload_all(
    http: aiohttp.ClientSession,
    nodes: dict[str, SimNode],
    envelopes: dict[str, list[bytes]],
    batch: int,
) -> None:
    async def one(node: SimNode, envs: list[bytes]) -> None:
        for start in range(0, len(envs), batch):
            body = pack({"envelopes": envs[start : start + batch]})
            headers = signed_headers(node, "POST", "/v1/messages", body)
            async with http.post("/v1/messages", data=body, headers=headers) as resp:
                ans = await resp.json()
                if resp.status != 200 or ans["rejected"]:
                    raise RuntimeError(f"upload refused: {resp.status} {ans}")

    await asyncio.gather(*(one(nodes[k], v) for k, v in envelopes.items()))


async def drain_all(
    http: aiohttp.ClientSession, recipients: list[SimNode], expected: int, batch: int
) -> None:
    """Each recipient fetches and acks until the expected total has been delivered."""
    done = 0
    finished = asyncio.Event()

    async def one(node: SimNode) -> None:
        nonlocal done
        while not finished.is_set():
            path = f"/v1/inbox?after=0&limit={batch}"
            async with http.get(path, headers=signed_headers(node, "GET", path, b"")) as resp:
                page = unpack(await resp.read(), 64 << 20)
            ids = [m["id"] for m in page["messages"]]
            if not ids:
                await asyncio.sleep(0.005)
                continue
            body = pack({"ids": ids})
            headers = signed_headers(node, "POST", "/v1/inbox/ack", body)
            async with http.post("/v1/inbox/ack", data=body, headers=headers) as resp:
                done += int((await resp.json())["deleted"])
            if done >= expected:
                finished.set()

    await asyncio.gather(*(one(r) for r in recipients))
    if done != expected:
        raise RuntimeError(f"drained {done} messages, {expected} were uploaded")


# ------------------------------------------------------------------ ceiling


class Ceiling(Protocol):
    """A bare queue on the hub's engine: one table, nothing but the bytes."""

    def ingest(self, blobs: list[bytes], batch: int) -> float: ...

    def ingest_alternative(self, blobs: list[bytes], batch: int) -> float | None: ...

    def drain(self, batch: int) -> tuple[float, int]: ...

    def close(self) -> None: ...


class BareQueue:
    """The ceiling: bare SQLite, WAL, one table, nothing but the bytes."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("CREATE TABLE q (seq INTEGER PRIMARY KEY, envelope BLOB NOT NULL)")

    def ingest(self, blobs: list[bytes], batch: int) -> float:
        """Seconds to insert `blobs`, `batch` rows per durable transaction."""
        conn = self.conn
        conn.execute("PRAGMA synchronous=FULL")
        t0 = time.perf_counter()
        for start in range(0, len(blobs), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO q (envelope) VALUES (?)", [(b,) for b in blobs[start : start + batch]]
            )
            conn.execute("COMMIT")
        return time.perf_counter() - t0

    def drain(self, batch: int) -> tuple[float, int]:
        """Seconds to read and delete every row, `batch` per transaction; rows drained."""
        conn = self.conn
        conn.execute("PRAGMA synchronous=NORMAL")
        drained = 0
        t0 = time.perf_counter()
        while True:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "SELECT seq, envelope FROM q ORDER BY seq LIMIT ?", (batch,)
            ).fetchall()
            conn.executemany("DELETE FROM q WHERE seq = ?", [(r[0],) for r in rows])
            conn.execute("COMMIT")
            drained += len(rows)
            if not rows:
                return time.perf_counter() - t0, drained

    def ingest_alternative(self, blobs: list[bytes], batch: int) -> float | None:
        return None

    def close(self) -> None:
        self.conn.close()


class SchemaQueue:
    """The hub's own schema, filled with the hub's own statements and nothing else.

    The same rows the hub stores for each envelope (the queue row with its
    three indexes, the metadata log row with its index, the sender's
    `queue_usage` count), written with `hub.relay`'s statements
    (`relay.store_rows`) in the same batches and durable commits, in this
    process: no HTTP, signatures, decoding, checks, nonces or thread hops.
    What the hub's figure loses against the bare ceiling splits into this
    ceiling's loss (what the tables that back the hub's guarantees cost the
    database) and the rest (the hub's own work).

    On SQLite a file of its own (`sqlite`); on PostgreSQL a schema of its own
    in the hub's database (`postgresql`), dropped by `close`. Either is made
    by the hub's own migrations.
    """

    PG_SCHEMA = "bench_relay_schema_ceiling"

    def __init__(self, db: Db, drop: Callable[[], None] | None = None) -> None:
        self.db = db
        self._drop = drop

    @classmethod
    def sqlite(cls, path: Path) -> SchemaQueue:
        return cls(connect(path))  # migrated by the hub's own code

    @classmethod
    def postgresql(cls, url: str) -> SchemaQueue:
        """The hub's PostgreSQL schema in a schema of its own (search_path), migrated
        by the hub's own code; the hub's tables in `public` are not touched."""
        name = cls.PG_SCHEMA
        conn = pg_connect(url)
        try:
            conn.execute(f"CREATE SCHEMA {name}")
            conn.execute(f"SET search_path TO {name}")
            db = PgDb(conn, "bench")
            pg_migrate(db)
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            conn.close()
            raise

        def drop() -> None:
            with contextlib.suppress(psycopg.Error):
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")

        return cls(db, drop)

    def ingest(self, blobs: list[bytes], batch: int) -> float:
        """Seconds to store `blobs` as the hub stores them, `batch` per durable commit
        (one sender's rows per call of `relay.store_rows`, as one upload of the hub)."""
        now = int(time.time())
        rows: list[relay.Incoming] = []
        for blob in blobs:
            env = Envelope.decode(blob)
            rows.append(relay.Incoming(env, blob, hashlib.sha256(blob).digest()))
        db = self.db
        t0 = time.perf_counter()
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            db.begin(durable=True)
            by_sender: dict[str, list[relay.Incoming]] = {}
            for row in chunk:
                by_sender.setdefault(row.envelope.sender, []).append(row)
            for sender, mine in by_sender.items():
                relay.store_rows(db, sender, mine, now)
            db.commit()
        return time.perf_counter() - t0

    def clear(self) -> None:
        """Empty the queue and the log for the next size (not timed)."""
        db = self.db
        db.begin(durable=False)
        db.execute("DELETE FROM queue")
        db.execute("DELETE FROM relay_log")
        db.commit()

    def close(self) -> None:
        try:
            if self._drop is not None:
                self._drop()
        finally:
            self.db.close()


class BarePgQueue:
    """The ceiling on PostgreSQL: bare psycopg, one table (bigint key, bytea).

    Server-side binding (psycopg's default cursor), autocommit with explicit
    transactions. Its tables live beside the hub's in the same database and
    are dropped by `close`.
    """

    TABLE = "bench_relay_ceiling"
    ALT_TABLE = "bench_relay_ceiling_executemany"

    def __init__(self, url: str) -> None:
        self.conn: psycopg.Connection[Any] = psycopg.connect(
            url, autocommit=True, application_name="mbe-bench-ceiling"
        )
        for table in (self.TABLE, self.ALT_TABLE):
            self.conn.execute(
                f"CREATE TABLE {table} (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                " envelope BYTEA NOT NULL)"
            )
        row = self.conn.execute("SHOW synchronous_commit").fetchone()
        self.synchronous_commit = str(row[0]) if row is not None else "?"
        row = self.conn.execute("SHOW fsync").fetchone()
        self.fsync = str(row[0]) if row is not None else "?"
        self.server_version = self.conn.info.server_version

    def ingest(self, blobs: list[bytes], batch: int) -> float:
        """Seconds to COPY `blobs` in, `batch` rows per transaction (synchronous_commit
        as the server has it: on, unless the server was set otherwise)."""
        conn = self.conn
        copy_sql = f"COPY {self.TABLE} (envelope) FROM STDIN (FORMAT BINARY)"
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            for start in range(0, len(blobs), batch):
                with conn.transaction(), cur.copy(copy_sql) as copy:
                    copy.set_types(["bytea"])
                    for blob in blobs[start : start + batch]:
                        copy.write_row((blob,))
        return time.perf_counter() - t0

    def ingest_alternative(self, blobs: list[bytes], batch: int) -> float | None:
        """Seconds to insert `blobs` with executemany (pipelined), `batch` rows per
        transaction, into a table of its own, emptied afterwards (not timed)."""
        conn = self.conn
        insert = f"INSERT INTO {self.ALT_TABLE} (envelope) VALUES (%s)"  # noqa: S608 -- a fixed table name
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            for start in range(0, len(blobs), batch):
                with conn.transaction():
                    cur.executemany(insert, [(b,) for b in blobs[start : start + batch]])
        elapsed = time.perf_counter() - t0
        conn.execute(f"TRUNCATE {self.ALT_TABLE}")
        return elapsed

    def drain(self, batch: int) -> tuple[float, int]:
        """Seconds to read and delete every row, `batch` per transaction, each with
        synchronous_commit off as the hub's acks; rows drained."""
        conn = self.conn
        select = f"SELECT seq, envelope FROM {self.TABLE} ORDER BY seq LIMIT %s"  # noqa: S608 -- a fixed table name
        delete = f"DELETE FROM {self.TABLE} WHERE seq = ANY(%s)"  # noqa: S608 -- a fixed table name
        drained = 0
        t0 = time.perf_counter()
        while True:
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = off")
                rows = conn.execute(select, (batch,)).fetchall()
                if rows:
                    conn.execute(delete, ([r[0] for r in rows],))
            drained += len(rows)
            if not rows:
                return time.perf_counter() - t0, drained

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            for table in (self.TABLE, self.ALT_TABLE):
                self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        self.conn.close()


def database_objects(url: str) -> int:
    """How many tables, sequences, views and other relations, plus functions, the
    database at `url` has outside the system schemas."""
    with psycopg.connect(url, autocommit=True, application_name="mbe-bench") as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname <> 'information_schema'"
            " AND n.nspname NOT LIKE 'pg\\_%')"
            " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n"
            " ON n.oid = p.pronamespace WHERE n.nspname <> 'information_schema'"
            " AND n.nspname NOT LIKE 'pg\\_%')"
        ).fetchone()
    return int(row[0]) if row is not None else 0


# ------------------------------------------------------------------ main


@dataclass(frozen=True)
class Figure:
    queued: int
    phase: str
    hub_per_s: float
    ceiling_per_s: float
    # Another plain way to the ceiling, printed beside it (PostgreSQL: executemany).
    alternative_per_s: float | None = None
    # The hub's own schema and statements alone (ingest: SchemaQueue).
    schema_per_s: float | None = None

    @property
    def ratio(self) -> float:
        return self.hub_per_s / self.ceiling_per_s


@dataclass(frozen=True)
class Options:
    sizes: list[int]
    nodes: int
    batch: int
    random_ids: bool
    engine: str
    database_url: str | None
    hub_log: Path | None


@dataclass
class Report:
    figures: list[Figure]
    envelope_size: int
    # One line on where the data lived and what the ceiling was.
    ceiling: str
    database: str
    hub_log: list[str]


def prepare_hub(data_dir: Path, node_count: int, batch: int, url: str | None = None) -> list[str]:
    """A hub data directory with `node_count` sites, on PostgreSQL at `url` if given;
    returns their enrollment codes."""
    data_dir.mkdir(mode=0o700)  # as `mbe-hub init` leaves it: the hub warns of a wider mode
    write_keys(data_dir / "hub.key", PrivateKeys.generate())
    config = default_config("Benchregion", "http://127.0.0.1")
    config = config.replace("# max_batch = 1000", f"max_batch = {max(batch, 1000)}")
    if url is not None:
        config += f"\n[database]\nurl = {toml_string(url)}\n"
    (data_dir / "hub.toml").write_text(config)
    settings = load_settings(data_dir)
    hub_keys = read_keys(settings.key_path)
    codes = []
    db = open_db(settings.db_path, settings.database.postgres_url)
    try:
        for i in range(node_count):
            new = add_site(
                db,
                hub_keys,
                settings,
                name=f"Bench Office {i}",
                org="Bench",
                services=["mbe"],
                languages=["de"],
                area="",
                now=int(time.time()),
                secret=int.from_bytes(os.urandom(8), "big") >> 4,
            )
            codes.append(new.code)
    finally:
        db.close()
    return codes


async def enroll_all(http: aiohttp.ClientSession, codes: list[str]) -> dict[str, SimNode]:
    nodes: dict[str, SimNode] = {}
    for code in codes:
        keys = PrivateKeys.generate()
        req = EnrollmentRequest.create(EnrollmentCode.parse(code), keys).encode()
        async with http.post("/v1/enroll", data=req) as resp:
            ans = unpack(await resp.read(), 16 << 20)
        nodes[ans["node_id"]] = SimNode(ans["node_id"], keys)
    return nodes


@contextlib.contextmanager
def postgres_database(url: str | None) -> Iterator[tuple[str, str]]:
    """The URL of an empty database for the run, and a line describing it: `url`
    (refused unless empty), else a new one in a throwaway cluster stopped at the end."""
    if url is not None:
        found = database_objects(url)
        if found:
            raise SystemExit(
                f"bench.relay: the database {redacted(url)} is not empty ({found} tables,"
                " sequences, functions ...): give an empty one, the hub migrates it"
            )
        yield url, f"PostgreSQL {redacted(url)}"
        return
    from tests import pg  # a test helper: imported only when it is needed

    reason = pg.available()
    if reason is not None:
        raise SystemExit(f"bench.relay: cannot start a throwaway PostgreSQL cluster: {reason}")
    with pg.Cluster() as cluster:
        yield (
            cluster.create_database(),
            f"throwaway PostgreSQL cluster in {cluster.directory} (tests/pg.py, fsync on)",
        )


async def measure(
    opts: Options,
    tmp: Path,
    url: str | None,
    ceiling: Ceiling,
    log: ServerLog,
    schema: SchemaQueue | None = None,
) -> tuple[list[Figure], int]:
    figures: list[Figure] = []
    size = 0
    data_dir = tmp / "hub"
    codes = prepare_hub(data_dir, opts.nodes, opts.batch, url)
    hub = await Server.start(
        ["-m", "hub.cli", "serve", "--dir", str(data_dir), "--port", "0"], '"hub.listening"', log
    )
    try:
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{hub.port}", connector=aiohttp.TCPConnector(limit=0)
        ) as http:
            nodes = await enroll_all(http, codes)
            all_nodes = list(nodes.values())
            half = max(1, len(all_nodes) // 2)
            senders, recipients = all_nodes[:half], all_nodes[half:] or all_nodes[:half]
            for n in opts.sizes:
                envs = make_envelopes(senders, recipients, n, random_ids=opts.random_ids)
                size = len(next(iter(envs.values()))[0])
                blobs = [b for v in envs.values() for b in v]

                t0 = time.perf_counter()
                await upload_all(http, nodes, envs, opts.batch)
                ingest_s = time.perf_counter() - t0
                bare_ingest_s = ceiling.ingest(blobs, opts.batch)
                alt_s = ceiling.ingest_alternative(blobs, opts.batch)
                schema_s = None
                if schema is not None:
                    schema_s = schema.ingest(blobs, opts.batch)
                    schema.clear()
                figures.append(
                    Figure(
                        n,
                        "ingest",
                        n / ingest_s,
                        n / bare_ingest_s,
                        None if alt_s is None else n / alt_s,
                        None if schema_s is None else n / schema_s,
                    )
                )

                t0 = time.perf_counter()
                await drain_all(http, recipients, n, opts.batch)
                drain_s = time.perf_counter() - t0
                bare_drain_s, drained = ceiling.drain(opts.batch)
                assert drained == n
                figures.append(Figure(n, "drain", n / drain_s, n / bare_drain_s))
    finally:
        await hub.stop()
    return figures, size


def bench(opts: Options) -> Report:
    """Run the bench: the figures, the envelope size and what the ceiling was."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mbe-bench-")))
        copy = stack.enter_context(opts.hub_log.open("w")) if opts.hub_log is not None else None
        log = ServerLog(copy)
        ceiling: Ceiling
        schema: SchemaQueue | None = None
        if opts.engine == POSTGRESQL:
            url, database = stack.enter_context(postgres_database(opts.database_url))
            bare_pg = BarePgQueue(url)
            stack.callback(bare_pg.close)
            ceiling = bare_pg
            schema = SchemaQueue.postgresql(url)
            stack.callback(schema.close)
            major, minor = divmod(bare_pg.server_version, 10000)
            described = (
                f"bare psycopg {psycopg.__version__} on the same server (PostgreSQL "
                f"{major}.{minor}, fsync={bare_pg.fsync}), one table (bigint identity key, "
                f"bytea), {opts.batch} rows per transaction; ingest COPY FROM STDIN (binary), "
                f"synchronous_commit={bare_pg.synchronous_commit} (executemany, pipelined, "
                "beside it); drain (read + delete by key) SET LOCAL synchronous_commit=off "
                "like the hub's acks"
            )
        else:
            url, database = None, f"SQLite in {tmp}"
            bare = BareQueue(tmp / "ceiling.db")
            stack.callback(bare.close)
            ceiling = bare
            schema = SchemaQueue.sqlite(tmp / "schema-ceiling.db")
            stack.callback(schema.close)
            described = (
                f"bare SQLite in this process, WAL, {opts.batch} rows per transaction; "
                "ingest synchronous=FULL, drain (read + delete by key) synchronous=NORMAL "
                "like the hub's acks"
            )
        figures, size = asyncio.run(measure(opts, tmp, url, ceiling, log, schema))
    return Report(figures, size, described, database, log.notable)


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers, comma-separated")
    return sizes


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="Relay throughput of the hub on loopback.")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="queue sizes to fill and drain, comma-separated (default 20000,100000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {','.join(map(str, QUICK_SIZES))}, for development",
    )
    parser.add_argument("--nodes", type=int, default=8, help="half send, half receive")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--random-ids", action="store_true", help="128-bit random message ids (older nodes)"
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="where the hub keeps its state (default sqlite; postgresql with --database-url)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="an empty PostgreSQL database for the hub and the ceiling (postgresql://...); "
        "without it, --engine postgresql starts a throwaway cluster for the run",
    )
    parser.add_argument(
        "--hub-log", metavar="FILE", type=Path, help="write the hub's output to FILE"
    )
    args = parser.parse_args(argv)
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    url: str | None = args.database_url
    engine: str = args.engine or (POSTGRESQL if url is not None else SQLITE)
    if url is not None:
        if engine != POSTGRESQL:
            parser.error("--database-url is for --engine postgresql")
        if not is_postgres_url(url):
            parser.error("--database-url must be a PostgreSQL URL, postgresql://user@host/dbname")
    return Options(
        sizes=list(QUICK_SIZES) if args.quick else args.sizes,
        nodes=args.nodes,
        batch=args.batch,
        random_ids=args.random_ids,
        engine=engine,
        database_url=url,
        hub_log=args.hub_log,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    report = bench(opts)
    ids = "random" if opts.random_ids else "time-ordered"
    postgres = opts.engine == POSTGRESQL
    print(
        f"relay bench: {opts.nodes} nodes (half sending at once), batches of {opts.batch}, "
        f"envelopes of {report.envelope_size} bytes, {ids} message ids, loopback"
    )
    if postgres:
        print(f"  hub and ceiling on {report.database}")
    extra = f" {'executemany':>11}" if postgres else ""
    print(f"  {'queued':>7}  {'phase':<30} {'hub msg/s':>10} {'ceiling':>10} {'ratio':>6}{extra}")
    for f in report.figures:
        phase = "ingest (fsync per commit)" if f.phase == "ingest" else "drain (fetch + ack)"
        alt = ""
        if postgres:
            alt = f" {f.alternative_per_s:>11.0f}" if f.alternative_per_s is not None else ""
        print(
            f"  {f.queued:>7}  {phase:<30} {f.hub_per_s:>10.0f} {f.ceiling_per_s:>10.0f} "
            f"{f.ratio:>6.2f}{alt}"
        )
    print(f"  ceiling: {report.ceiling}")
    for f in report.figures:
        if f.schema_per_s is not None:
            print(
                f"  {f.queued:>7}  schema ceiling (ingest){'':7} {f.schema_per_s:>10.0f}"
                f"  bare/schema {f.schema_per_s / f.ceiling_per_s:.2f}"
                f"  hub/schema {f.hub_per_s / f.schema_per_s:.2f}"
            )
    if any(f.schema_per_s is not None for f in report.figures):
        print(
            f"  schema ceiling: the hub's own {'PostgreSQL' if postgres else 'SQLite'} schema"
            " (its migrations) and statements (hub.relay.store_rows), same rows, batches and"
            " durable commits, in this process"
        )
    if postgres or report.hub_log:
        print(f"  hub log: {len(report.hub_log)} warnings or errors")
        for line in report.hub_log[:SHOWN_LOG_LINES]:
            print(f"    {line[:300]}")
    if opts.database_url is not None:
        print("  the hub's tables stay in the database given: use an empty one for the next run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
