"""Relay throughput of the hub on loopback, against a bare SQLite ceiling.

Starts `mbe-hub serve` as a subprocess on 127.0.0.1, enrolls simulated nodes,
and measures, with every upload durably committed before its answer:

* ingest: sealed envelopes uploaded in batches by all senders at once;
* drain: recipients fetch and acknowledge everything;
* end to end: uploads and fetch+ack running at the same time, first upload to
  last acknowledgement;
* ceiling: a bare aiohttp endpoint in its own process that inserts the same
  envelope bytes in the same batch sizes into SQLite (WAL, synchronous=FULL),
  with no signatures, validation or bookkeeping.

Usage: .venv/bin/python -m bench.relay [--messages N] [--nodes K] [--batch B]
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hub.keyfile import read_keys, write_keys
from hub.settings import default_config, load_settings
from hub.sites import add_site
from hub.storage.db import connect
from protocol.encoding import pack, unpack
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import InnerMessage, seal
from protocol.keys import PrivateKeys
from protocol.payloads import Receipt
from protocol.requests import sign_request

ROOT = Path(__file__).resolve().parents[1]


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


def make_envelopes(
    senders: list[SimNode], recipients: list[SimNode], count: int
) -> dict[str, list[bytes]]:
    """Sealed envelopes (1 KiB bucket), round-robin from senders to recipients."""
    now = int(time.time())
    out: dict[str, list[bytes]] = {s.node_id: [] for s in senders}
    for i in range(count):
        s = senders[i % len(senders)]
        r = recipients[i % len(recipients)]
        inner = InnerMessage(
            msg_id=os.urandom(16).hex(),
            sender=s.node_id,
            recipient=r.node_id,
            created=now,
            expires=now + 86400,
            payload=Receipt(of_msg_id=os.urandom(16).hex(), received=now),
        )
        env = seal(inner, s.keys, r.keys.public, ephemeral_secret=os.urandom(32))
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


# ------------------------------------------------------------------ ceiling server


def ceiling_app(db_path: Path) -> web.Application:
    writer = ThreadPoolExecutor(max_workers=1)
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS q (seq INTEGER PRIMARY KEY, envelope BLOB NOT NULL)")

    def insert(blobs: list[bytes]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO q (envelope) VALUES (?)", [(b,) for b in blobs])
        conn.execute("COMMIT")

    async def ingest(request: web.Request) -> web.Response:
        blobs = unpack(await request.read(), 64 << 20)["envelopes"]
        # On one writer thread, like the hub, so both pay the same thread hop.
        await asyncio.get_running_loop().run_in_executor(writer, insert, blobs)
        return web.json_response({"stored": len(blobs)})

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/ingest", ingest)
    return app


async def serve_ceiling(db_path: Path) -> None:
    runner = web.AppRunner(ceiling_app(db_path), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(json.dumps({"event": "ceiling.listening", "port": runner.addresses[0][1]}), flush=True)
    await asyncio.Event().wait()


async def ceiling_upload(
    http: aiohttp.ClientSession, envelopes: dict[str, list[bytes]], batch: int
) -> None:
    async def one(envs: list[bytes]) -> None:
        for start in range(0, len(envs), batch):
            body = pack({"envelopes": envs[start : start + batch]})
            async with http.post("/ingest", data=body) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"ceiling endpoint answered {resp.status}")

    await asyncio.gather(*(one(v) for v in envelopes.values()))


# ------------------------------------------------------------------ main


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


async def bench(messages: int, node_count: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mbe-bench-") as tmp:
        data_dir = Path(tmp) / "hub"
        codes = prepare_hub(data_dir, node_count, batch)
        hub = await Server.start(
            ["-m", "hub.cli", "serve", "--dir", str(data_dir), "--port", "0"], '"hub.listening"'
        )
        nodes: dict[str, SimNode] = {}
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{hub.port}", connector=aiohttp.TCPConnector(limit=0)
        ) as http:
            for code in codes:
                keys = PrivateKeys.generate()
                req = EnrollmentRequest.create(EnrollmentCode.parse(code), keys).encode()
                async with http.post("/v1/enroll", data=req) as resp:
                    ans = unpack(await resp.read(), 16 << 20)
                nodes[ans["node_id"]] = SimNode(ans["node_id"], keys)
            all_nodes = list(nodes.values())
            half = max(1, len(all_nodes) // 2)
            senders, recipients = all_nodes[:half], all_nodes[half:] or all_nodes[:half]

            envs = make_envelopes(senders, recipients, messages)
            t0 = time.perf_counter()
            await upload_all(http, nodes, envs, batch)
            ingest_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            await drain_all(http, recipients, messages, batch)
            drain_s = time.perf_counter() - t0

            envs2 = make_envelopes(senders, recipients, messages)
            t0 = time.perf_counter()
            await asyncio.gather(
                upload_all(http, nodes, envs2, batch),
                drain_all(http, recipients, messages, batch),
            )
            e2e_s = time.perf_counter() - t0
        await hub.stop()

        ceiling = await Server.start(
            ["-m", "bench.relay", "--ceiling-server", str(Path(tmp) / "ceiling.db")],
            '"ceiling.listening"',
        )
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{ceiling.port}", connector=aiohttp.TCPConnector(limit=0)
        ) as http:
            t0 = time.perf_counter()
            await ceiling_upload(http, envs, batch)
            ceiling_s = time.perf_counter() - t0
        await ceiling.stop()
    return {
        "messages": messages,
        "senders": len(senders),
        "nodes": node_count,
        "batch": batch,
        "envelope_bytes": len(next(iter(envs.values()))[0]),
        "ingest_msgs_per_s": messages / ingest_s,
        "drain_msgs_per_s": messages / drain_s,
        "end_to_end_msgs_per_s": messages / e2e_s,
        "ceiling_msgs_per_s": messages / ceiling_s,
        "ingest_to_ceiling": ceiling_s / ingest_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Relay throughput of the hub on loopback.")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=8, help="half send, half receive")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--ceiling-server", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ceiling_server is not None:
        asyncio.run(serve_ceiling(args.ceiling_server))
        return 0
    r = asyncio.run(bench(args.messages, args.nodes, args.batch))
    print(
        f"relay bench: {r['messages']} messages of {r['envelope_bytes']} bytes, "
        f"{r['nodes']} nodes ({r['senders']} sending at once), batches of {r['batch']}, "
        "loopback, fsync on every upload commit"
    )
    print(f"  ingested (durable):     {r['ingest_msgs_per_s']:9.0f} msgs/s")
    print(f"  drained (fetch+ack):    {r['drain_msgs_per_s']:9.0f} msgs/s")
    print(f"  end to end (pipelined): {r['end_to_end_msgs_per_s']:9.0f} msgs/s")
    print(f"  ceiling (bare SQLite):  {r['ceiling_msgs_per_s']:9.0f} msgs/s")
    print(f"  ingest / ceiling:       {r['ingest_to_ceiling']:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
