"""Relay throughput of the hub on loopback, next to a bare SQLite ceiling.

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

The envelopes are outer envelopes as the hub sees them, with ids made as nodes
make them (`node.clock.new_message_id`, time-ordered; `--random-ids` for the
128-bit random ids of older nodes) and random ciphertext of the length a
sealed receipt has: the hub never opens the ciphertext, and sealing 100 000
real messages would take the bench a minute.

Usage: .venv/bin/python -m bench.relay [--sizes 20000,100000] [--nodes 8]
       [--batch 100] [--random-ids] [--quick]
(run as a module: a script run from bench/ would see bench/protocol.py as `protocol`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from hub.keyfile import read_keys, write_keys
from hub.settings import default_config, load_settings
from hub.sites import add_site
from hub.storage.db import connect
from node.clock import new_message_id
from protocol.encoding import pack, unpack
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import Envelope, InnerMessage, seal
from protocol.keys import PrivateKeys
from protocol.payloads import Receipt
from protocol.requests import sign_request
from support.clock import SystemRandom

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (20_000, 100_000)
QUICK_SIZES = (2_000, 10_000)


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


class Server:
    """A server subprocess whose port is read from its first line containing `marker`."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self._drain = asyncio.create_task(self._discard())

    async def _discard(self) -> None:
        assert self.proc.stdout is not None
        async for _ in self.proc.stdout:
            pass

    @classmethod
    async def start(cls, args: list[str], marker: str) -> Server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
            if not line:
                raise RuntimeError("server exited before listening")
            if marker in line:
                return cls(proc, int(json.loads(line)["port"]))

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

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------ main


@dataclass(frozen=True)
class Figure:
    queued: int
    phase: str
    hub_per_s: float
    ceiling_per_s: float

    @property
    def ratio(self) -> float:
        return self.hub_per_s / self.ceiling_per_s


def prepare_hub(data_dir: Path, node_count: int, batch: int) -> list[str]:
    """A hub data directory with `node_count` sites; returns their enrollment codes."""
    data_dir.mkdir()
    write_keys(data_dir / "hub.key", PrivateKeys.generate())
    config = default_config("Benchregion", "http://127.0.0.1")
    config = config.replace("# max_batch = 1000", f"max_batch = {max(batch, 1000)}")
    (data_dir / "hub.toml").write_text(config)
    settings = load_settings(data_dir)
    hub_keys = read_keys(settings.key_path)
    codes = []
    db = connect(settings.db_path)
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


async def bench(
    sizes: list[int], node_count: int, batch: int, *, random_ids: bool
) -> tuple[list[Figure], int]:
    """The figures, and the envelope size in bytes."""
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="mbe-bench-") as tmp:
        data_dir = Path(tmp) / "hub"
        codes = prepare_hub(data_dir, node_count, batch)
        hub = await Server.start(
            ["-m", "hub.cli", "serve", "--dir", str(data_dir), "--port", "0"], '"hub.listening"'
        )
        bare = BareQueue(Path(tmp) / "ceiling.db")
        try:
            async with aiohttp.ClientSession(
                base_url=f"http://127.0.0.1:{hub.port}", connector=aiohttp.TCPConnector(limit=0)
            ) as http:
                nodes = await enroll_all(http, codes)
                all_nodes = list(nodes.values())
                half = max(1, len(all_nodes) // 2)
                senders, recipients = all_nodes[:half], all_nodes[half:] or all_nodes[:half]
                for n in sizes:
                    envs = make_envelopes(senders, recipients, n, random_ids=random_ids)
                    size = len(next(iter(envs.values()))[0])
                    blobs = [b for v in envs.values() for b in v]

                    t0 = time.perf_counter()
                    await upload_all(http, nodes, envs, batch)
                    ingest_s = time.perf_counter() - t0
                    bare_ingest_s = bare.ingest(blobs, batch)
                    figures.append(Figure(n, "ingest", n / ingest_s, n / bare_ingest_s))

                    t0 = time.perf_counter()
                    await drain_all(http, recipients, n, batch)
                    drain_s = time.perf_counter() - t0
                    bare_drain_s, drained = bare.drain(batch)
                    assert drained == n
                    figures.append(Figure(n, "drain", n / drain_s, n / bare_drain_s))
        finally:
            bare.close()
            await hub.stop()
    return figures, size


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers, comma-separated")
    return sizes


def main() -> int:
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
    args = parser.parse_args()
    sizes = list(QUICK_SIZES) if args.quick else args.sizes
    figures, size = asyncio.run(bench(sizes, args.nodes, args.batch, random_ids=args.random_ids))
    ids = "random" if args.random_ids else "time-ordered"
    print(
        f"relay bench: {args.nodes} nodes (half sending at once), batches of {args.batch}, "
        f"envelopes of {size} bytes, {ids} message ids, loopback"
    )
    print(f"  {'queued':>7}  {'phase':<30} {'hub msg/s':>10} {'ceiling':>10} {'ratio':>6}")
    for f in figures:
        phase = "ingest (fsync per commit)" if f.phase == "ingest" else "drain (fetch + ack)"
        print(
            f"  {f.queued:>7}  {phase:<30} {f.hub_per_s:>10.0f} {f.ceiling_per_s:>10.0f} "
            f"{f.ratio:>6.2f}"
        )
    print(
        f"  ceiling: bare SQLite in this process, WAL, {args.batch} rows per transaction; "
        "ingest synchronous=FULL, drain (read + delete by key) synchronous=NORMAL "
        "like the hub's acks"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
