"""Cost of adding and enrolling one more site as the number of sites grows.

Starts `mbe-hub serve` as a subprocess on 127.0.0.1 and, site after site up to
`--sites` (issue 11 asks for 2 000):

* add: `hub.sites.add_site` on a connection of its own, as `mbe-hub site add`
  does from another process (a durable transaction that also publishes a
  directory version);
* enroll: the node's enrollment request over HTTP (`POST /v1/enroll`), answered
  once the enrollment and the next directory version are on disk.

The node's key pair and request are made outside the timed part. It prints the
time per site (the median over the last `--window` sites) at 100, 500, 1 000
and 2 000 sites and the ratio last / first: near 1 is flat, as issue 11 asks;
work proportional to all sites on every enrollment shows as a ratio growing
with `--sites`. Every directory holds all enrolled sites and is signed as a
whole, so signing it and storing it stay proportional to the sites; the
figures show how much of the time that is.

Usage: .venv/bin/python -m bench.enrollment [--sites 2000] [--window 20]
(run as a module: a script run from bench/ would see bench/protocol.py as `protocol`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from hub.keyfile import read_keys, write_keys
from hub.settings import default_config, load_settings
from hub.sites import add_site
from hub.storage.db import connect
from protocol.encoding import unpack
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.keys import PrivateKeys

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = (100, 500, 1000, 2000)


async def start_hub(data_dir: Path) -> tuple[asyncio.subprocess.Process, int]:
    """`mbe-hub serve` on a free port; returns the process and the port it listens on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "serve",
        "--dir",
        str(data_dir),
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
            if not line:
                raise RuntimeError("the hub exited before listening")
            if '"hub.listening"' in line:
                return proc, int(json.loads(line)["port"])
    except BaseException:
        proc.kill()
        await proc.wait()
        raise


async def discard(stream: asyncio.StreamReader) -> None:
    async for _ in stream:
        pass


def checkpoints(sites: int) -> list[int]:
    return [c for c in CHECKPOINTS if c < sites] + [sites]


async def run(sites: int, window: int, data_dir: Path) -> dict[int, tuple[float, float]]:
    """Enroll `sites` sites; per checkpoint the median add and enroll times (seconds)."""
    data_dir.mkdir()
    write_keys(data_dir / "hub.key", PrivateKeys.generate())
    # Log level info: the port is read from the "hub.listening" line; the rest is discarded.
    (data_dir / "hub.toml").write_text(default_config("Benchregion", "http://127.0.0.1"))
    settings = load_settings(data_dir)
    hub_keys = read_keys(settings.key_path)
    proc, port = await start_hub(data_dir)
    assert proc.stdout is not None
    drain = asyncio.create_task(discard(proc.stdout))
    add_times: list[float] = []
    enroll_times: list[float] = []
    db = connect(settings.db_path)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            for i in range(sites):
                t0 = time.perf_counter()
                new = add_site(
                    db,
                    hub_keys,
                    settings,
                    name=f"Bench Office {i}",
                    org="Bench",
                    services=["mbe", "jobcenter"],
                    languages=["de", "en"],
                    area="Benchstadt",
                    now=int(time.time()),
                    secret=int.from_bytes(os.urandom(8), "big") >> 4,
                )
                add_times.append(time.perf_counter() - t0)
                keys = PrivateKeys.generate()
                body = EnrollmentRequest.create(EnrollmentCode.parse(new.code), keys).encode()
                t0 = time.perf_counter()
                async with http.post(
                    "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"}
                ) as resp:
                    answer = await resp.read()
                enroll_times.append(time.perf_counter() - t0)
                if resp.status != 200:
                    raise RuntimeError(f"enrollment refused: {resp.status} {answer[:200]!r}")
                if unpack(answer, 16 << 20)["node_id"] != new.node_id:
                    raise RuntimeError("enrolled another node id than added")
    finally:
        db.close()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=30)
        await drain
    out: dict[int, tuple[float, float]] = {}
    for n in checkpoints(sites):
        lo = max(0, n - window)
        out[n] = (statistics.median(add_times[lo:n]), statistics.median(enroll_times[lo:n]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=2000, help="sites to add and enroll")
    parser.add_argument("--window", type=int, default=20, help="sites per median")
    args = parser.parse_args(argv)
    if args.sites < 1 or args.window < 1:
        parser.error("--sites and --window must be at least 1")
    with tempfile.TemporaryDirectory(prefix="mbe-bench-enroll-") as tmp:
        started = time.perf_counter()
        figures = asyncio.run(run(args.sites, args.window, Path(tmp) / "hub"))
        took = time.perf_counter() - started
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"per site (median of {args.window}):  sites    add ms  enroll ms  total ms")
    for n, (add, enroll) in figures.items():
        print(f"{'':34}{n:6d}  {add * 1e3:8.1f}  {enroll * 1e3:9.1f}  {(add + enroll) * 1e3:8.1f}")
    first, last = figures[min(figures)], figures[max(figures)]
    print(
        f"ratio last/first: add {last[0] / first[0]:.2f}, enroll {last[1] / first[1]:.2f},"
        f" total {sum(last) / sum(first):.2f}  ({took:.0f} s in all)"
    )


if __name__ == "__main__":
    main()
