"""Cost of adding and enrolling one more site as the number of sites grows.

Starts `mbe-hub serve` as a subprocess on 127.0.0.1 and, site after site up to
`--sites` (issue 11 asks for 2 000):

* add: `hub.sites.add_site` on a connection of its own, as `mbe-hub site add`
  does from another process (a durable transaction that also publishes a
  directory version);
* enroll: the node's enrollment request over HTTP (`POST /v1/enroll`), answered
  once the enrollment is on disk, with the newest directory version;
* listed: at each checkpoint, after a pause of twice `directory.publish_interval`,
  one enrollment is timed from its request until the hub has published the
  directory version that lists it (hub/publisher.py makes it right after the
  answer, one version per interval for all enrollments meanwhile).

The node's key pair and request are made outside the timed part. It prints the
time per site (the median over the last `--window` sites) at 100, 500, 1 000
and 2 000 sites and the ratio last / first: near 1 is flat, as issue 11 asks;
work proportional to all sites on every enrollment shows as a ratio growing
with `--sites`. Every directory version holds all enrolled sites and is
signed as a whole, so making one stays proportional to the sites: "listed"
shows it, and the count of versions the hub published shows how many
enrollments shared one.

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
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from hub import directory
from hub.keyfile import read_keys, write_keys
from hub.settings import default_config, load_settings
from hub.sites import add_site
from hub.storage.db import connect
from hub.storage.engine import Db
from protocol.documents import Directory
from protocol.encoding import unpack
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.keys import PrivateKeys, PublicKeys

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


async def count_publications(stream: asyncio.StreamReader) -> int:
    """Read the hub's log to its end; the directory versions published for enrollments."""
    published = 0
    async for line in stream:
        published += b'"directory.published"' in line
    return published


def listed(db: Db, hub_public: PublicKeys, node_id: str) -> bool:
    """Whether the newest directory version lists `node_id`."""
    current = directory.latest(db)
    if current is None:
        return False
    doc = Directory.verify(current.data, hub_public, now=current.issued)
    return doc.office(node_id) is not None


def checkpoints(sites: int) -> list[int]:
    return [c for c in CHECKPOINTS if c < sites] + [sites]


@dataclass
class Times:
    """Seconds per site: adding, enrolling; and per checkpoint until listed."""

    add: list[float] = field(default_factory=list)
    enroll: list[float] = field(default_factory=list)
    listed: dict[int, float] = field(default_factory=dict)


async def run(sites: int, window: int, data_dir: Path) -> tuple[dict[int, tuple[float, ...]], int]:
    """Enroll `sites` sites; per checkpoint the median add and enroll times and the
    time until listed (seconds); and the directory versions published for them."""
    data_dir.mkdir()
    write_keys(data_dir / "hub.key", PrivateKeys.generate())
    # Log level info: the port is read from the "hub.listening" line, and the
    # publications are counted from the rest.
    (data_dir / "hub.toml").write_text(default_config("Benchregion", "http://127.0.0.1"))
    settings = load_settings(data_dir)
    hub_keys = read_keys(settings.key_path)
    proc, port = await start_hub(data_dir)
    assert proc.stdout is not None
    log = asyncio.create_task(count_publications(proc.stdout))
    times = Times()
    marks = set(checkpoints(sites))
    db = connect(settings.db_path)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            for i in range(1, sites + 1):
                if i in marks:
                    # The version owed to the enrollments before comes one interval
                    # after the last at most; one more, and the next is made at once.
                    await asyncio.sleep(2 * settings.directory.publish_interval + 0.2)
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
                added = time.perf_counter() - t0
                keys = PrivateKeys.generate()
                body = EnrollmentRequest.create(EnrollmentCode.parse(new.code), keys).encode()
                held = directory.latest_version(db)
                t0 = time.perf_counter()
                async with http.post(
                    "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"}
                ) as resp:
                    answer = await resp.read()
                enrolled = time.perf_counter() - t0
                if resp.status != 200:
                    raise RuntimeError(f"enrollment refused: {resp.status} {answer[:200]!r}")
                if unpack(answer, 16 << 20)["node_id"] != new.node_id:
                    raise RuntimeError("enrolled another node id than added")
                if i in marks:
                    while directory.latest_version(db) == held:  # a primary-key lookup
                        await asyncio.sleep(0.001)
                    times.listed[i] = time.perf_counter() - t0
                    if not listed(db, hub_keys.public, new.node_id):
                        raise RuntimeError("the next directory version does not list the site")
                else:  # the medians leave out the enrollments timed after a pause
                    times.add.append(added)
                    times.enroll.append(enrolled)
    finally:
        db.close()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=30)
        published = await log
    out: dict[int, tuple[float, ...]] = {}
    for n in checkpoints(sites):
        k = n - sum(1 for m in marks if m <= n)  # timed sites up to n
        lo = max(0, k - window)
        out[n] = (
            statistics.median(times.add[lo:k] or times.add[:1]),
            statistics.median(times.enroll[lo:k] or times.enroll[:1]),
            times.listed[n],
        )
    return out, published


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=2000, help="sites to add and enroll")
    parser.add_argument("--window", type=int, default=20, help="sites per median")
    args = parser.parse_args(argv)
    if args.sites < 1 or args.window < 1:
        parser.error("--sites and --window must be at least 1")
    with tempfile.TemporaryDirectory(prefix="mbe-bench-enroll-") as tmp:
        started = time.perf_counter()
        figures, published = asyncio.run(run(args.sites, args.window, Path(tmp) / "hub"))
        took = time.perf_counter() - started
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"per site (median of {args.window}):  sites    add ms  enroll ms  total ms"
        "  listed ms (one site)"
    )
    for n, (add, enroll, until) in figures.items():
        print(
            f"{'':34}{n:6d}  {add * 1e3:8.1f}  {enroll * 1e3:9.1f}  {(add + enroll) * 1e3:8.1f}"
            f"  {until * 1e3:9.1f}"
        )
    first, last = figures[min(figures)], figures[max(figures)]
    print(
        f"ratio last/first: add {last[0] / first[0]:.2f}, enroll {last[1] / first[1]:.2f},"
        f" total {(last[0] + last[1]) / (first[0] + first[1]):.2f},"
        f" listed {last[2] / first[2]:.2f}  ({took:.0f} s in all)"
    )
    print(f"directory versions published for {args.sites} enrollments: {published}")


if __name__ == "__main__":
    main()
