"""Referral delivery between two offices, through real processes on loopback.

Starts `mbe-hub serve` and two `mbe-node serve` (A and B, WebSocket push on)
through the demo harness and measures:

* latency: A's `POST /referrals/outgoing` returns -> B has committed the
  referral (p50, p95, p99 over --n referrals, sent one after another, --gap
  0.1 s apart so the previous referral's receipt is not in the way; --gap 0
  sends them back to back). The
  moment B committed it is the timestamp of B's `inbox.applied` log line for
  the referral id, written right after the commit, so the benchmark reads
  B's log file and never asks B anything while it measures (polling B's API
  every millisecond, as it once did, loaded the very process it timed);
* the ceiling, in the same run: the round trip of a GET to a bare aiohttp
  process on loopback over a kept-alive connection (p50, p95, p99), three
  after each referral so both figures see the same load, and the ratio;
* catch-up: B is stopped, A sends --queued referrals (all uploaded to the
  hub, A's outbox empty), B is started; the time from starting B's process
  until B's status counts all of them as received, then checked against B's
  incoming list.

Usage: .venv/bin/python -m bench.referral [--n 1000] [--queued 5000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from demo.cluster import Cluster, Node, Office
from demo.processes import ClusterError, free_port

API = "/api/v1"
FIELDS = ["given_name", "family_name", "languages", "topics"]
OFFICE_A = Office("Caritas Nürnberg", "Caritas", ("mbe",), ("de", "ar"), "Nürnberg")
OFFICE_B = Office("AWO Fürth", "AWO", ("mbe", "jmd"), ("de", "tr"), "Fürth")


class BenchError(Exception):
    """The benchmark could not measure what it set out to."""


class Client:
    """A JSON client on one kept-alive HTTP connection (one per thread)."""

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._conn = http.client.HTTPConnection(self._host, self._port, timeout=60)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        try:
            self._conn.request(method, path, body=data, headers=self._headers)
            resp = self._conn.getresponse()
        except (http.client.HTTPException, ConnectionError):
            # The server closed the kept-alive connection; one fresh attempt.
            self._conn.close()
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=60)
            self._conn.request(method, path, body=data, headers=self._headers)
            resp = self._conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.call(method, path, body)
        if status >= 300:
            raise BenchError(f"{method} {path}: {status} {data}")
        return data

    def close(self) -> None:
        self._conn.close()


def client(node: Node) -> Client:
    return Client(node.service.url, node.api.token)


def prepare_case(a: Node, b: Node) -> str:
    """One case at A with the client's consent to refer to B; every referral uses it."""
    case = {
        "case_type": "case_management",
        "pseudonym": "BENCH-1",
        "given_name": "Amina",
        "family_name": "Haddad",
        "languages": ["ar"],
        "topics": ["housing", "language_course"],
    }
    case_id: str = a.api.post(f"{API}/cases", case)["id"]
    consent = {
        "purpose": "Weiterleitung",
        "recipient": b.node_id,
        "fields": FIELDS,
        "form": "written",
        "legal_regime": "gdpr",
    }
    a.api.post(f"{API}/cases/{case_id}/consents", consent)
    return case_id


def referral_body(case_id: str, b: Node) -> dict[str, Any]:
    return {"case_id": case_id, "recipient": b.node_id, "target_type": "jmd", "fields": FIELDS}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))
    return ordered[k]


class LogWatch:
    """Follows a node's log file for `inbox.applied` lines: when each referral id
    was committed (Unix time of the line)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._file.seek(0, 2)
        self._partial = b""
        self.applied: dict[str, float] = {}

    def _read(self) -> None:
        data = self._partial + self._file.read()
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            if b'"inbox.applied"' not in line:
                continue
            event = json.loads(line)
            rid = event.get("referral_id")
            if rid:
                stamp = event["timestamp"].replace("Z", "+00:00")
                self.applied[rid] = datetime.fromisoformat(stamp).timestamp()

    def wait(self, referral_id: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while referral_id not in self.applied:
            if time.monotonic() > deadline:
                raise BenchError(f"B did not log referral {referral_id} within {timeout} s")
            time.sleep(0.002)
            self._read()
        return self.applied[referral_id]

    def close(self) -> None:
        self._file.close()


def measure_latency(
    a: Node, b: Node, case_id: str, n: int, timeout: float, gap: float = 0.1
) -> tuple[list[float], list[float], list[float]]:
    """Seconds from A's API answer to B's commit of the referral, n times, and the
    ceiling: between two referrals, three GETs to a bare aiohttp process (so
    both figures are taken under the same load of the machine), and 1,000 GETs
    back to back at the end (the ceiling at its best)."""
    send = client(a)
    watch = LogWatch(b.service.log_path)
    body = referral_body(case_id, b)
    out: list[float] = []
    with BareServer() as bare:
        try:
            for _ in range(n):
                rid = send.ok("POST", f"{API}/referrals/outgoing", body)["id"]
                answered = time.time()
                out.append(watch.wait(rid, timeout) - answered)
                # The receipt travels back meanwhile; the next referral and the
                # ceiling's round trips start on a quiet system, as an office's
                # referrals are seconds apart, not back to back.
                time.sleep(gap)
                for _ in range(3):
                    bare.round_trip()
        finally:
            send.close()
            watch.close()
        # Also back to back, as a warm loop (the best case of the ceiling).
        warm = BareServer.times_of(bare, 1000)
        return out, bare.times, warm


BARE_SERVER = """
import sys
from aiohttp import web
async def ok(request):
    return web.json_response({"status": "ok"})
app = web.Application()
app.router.add_get("/health", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


class BareServer:
    """A bare aiohttp process on loopback serving one JSON route: the ceiling."""

    def __init__(self) -> None:
        self.port = free_port()
        self.times: list[float] = []
        self._proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(self.port)])
        self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def __enter__(self) -> BareServer:
        deadline = time.monotonic() + 20
        while True:
            try:
                self._get()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("the bare aiohttp server did not start") from None
                self._conn.close()
                time.sleep(0.05)
        for _ in range(100):  # warm-up, not counted
            self._get()
        return self

    def _get(self) -> None:
        self._conn.request("GET", "/health")
        self._conn.getresponse().read()

    def round_trip(self) -> None:
        t0 = time.perf_counter()
        self._get()
        self.times.append(time.perf_counter() - t0)

    @staticmethod
    def times_of(server: BareServer, n: int) -> list[float]:
        """`n` round trips one after another; their times (not kept in `times`)."""
        kept = len(server.times)
        for _ in range(n):
            server.round_trip()
        out = server.times[kept:]
        del server.times[kept:]
        return out

    def __exit__(self, *exc: object) -> None:
        self._conn.close()
        self._proc.terminate()
        self._proc.wait()


def send_many(a: Node, b: Node, case_id: str, count: int, workers: int = 4) -> list[str]:
    """Send `count` referrals through A's API from a few threads; their ids."""
    body = referral_body(case_id, b)
    local = threading.local()

    def one(_: int) -> str:
        if not hasattr(local, "client"):
            local.client = client(a)
        rid: str = local.client.ok("POST", f"{API}/referrals/outgoing", body)["id"]
        return rid

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


def wait_status(node: Node, key: str, want: int, timeout: float, poll: float = 0.02) -> float:
    """Poll the node's status until `key` equals `want`; the time it took."""
    c = client(node)
    t0 = time.perf_counter()
    try:
        while True:
            value = c.ok("GET", f"{API}/status")[key]
            if value == want:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise BenchError(f"{key} is {value}, not {want}, after {timeout} s")
            time.sleep(poll)
    finally:
        c.close()


def measure_catch_up(
    cluster: Cluster, case_id: str, count: int, timeout: float
) -> dict[str, float]:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    before = b.api.get(f"{API}/status")["inbox_depth"]
    b.service.stop()
    t0 = time.perf_counter()
    ids = send_many(a, b, case_id, count)
    sent = time.perf_counter() - t0
    uploaded = wait_status(a, "outbox_depth", 0, timeout)
    if a.api.get(f"{API}/status")["outbox_rejected"]:
        raise BenchError("the hub refused some of A's messages")
    t_start = time.perf_counter()
    b.service.start()
    healthy = time.perf_counter() - t_start
    wait_status(b, "inbox_depth", before + count, timeout)
    total = time.perf_counter() - t_start
    listed = {r["id"] for r in b.api.get(f"{API}/referrals/incoming?state=received")["referrals"]}
    missing = set(ids) - listed
    if missing:
        raise BenchError(f"{len(missing)} queued referrals are not in B's incoming list")
    return {
        "send": sent,
        "upload_after_send": uploaded,
        "start": healthy,
        "catch_up": total,
    }


def run(n: int, queued: int, timeout: float, gap: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="mbe-bench-referral-"))
    cluster = Cluster(root)
    try:
        cluster.start_hub()
        a = cluster.add_node("a", OFFICE_A, start=False, sync={"push": True})
        b = cluster.add_node("b", OFFICE_B, start=False, sync={"push": True})
        a.service.start()
        b.service.start()
        cluster.wait_directory()
        case_id = prepare_case(a, b)
        measure_latency(a, b, case_id, min(20, n), timeout)  # warm-up, not counted
        referral, round_trips, warm_trips = measure_latency(a, b, case_id, n, timeout, gap)
        ms = [x * 1000 for x in referral]
        bare = [x * 1000 for x in round_trips]
        warm = [x * 1000 for x in warm_trips]
        print(f"latency A -> B over {n} referrals {gap} s apart, push on (ms):")
        print(f"  referral  {_figures(ms)}")
        print(f"  ceiling   {_figures(bare)}   (bare aiohttp round trip, interleaved)")
        print(f"  warm loop {_figures(warm)}   (bare round trips back to back)")
        for name, base in (("ratio", bare), ("to warm", warm)):
            print(
                f"  {name:<9} p50 {percentile(ms, 50) / percentile(base, 50):.0f}x  "
                f"p99 {percentile(ms, 99) / percentile(base, 99):.0f}x"
            )
        if queued:
            c = measure_catch_up(cluster, case_id, queued, timeout=max(timeout, 600.0))
            print(f"catch-up of {queued} referrals queued while B was offline:")
            print(
                f"  A's API accepted them in {c['send']:.1f} s ({queued / c['send']:.0f}/s); "
                f"all at the hub {c['upload_after_send']:.1f} s after the last"
            )
            print(
                f"  B: {c['catch_up']:.1f} s from starting the process to all {queued} received "
                f"({queued / c['catch_up']:.0f}/s; health check answered after {c['start']:.1f} s)"
            )
    finally:
        cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


def _figures(ms: list[float]) -> str:
    return (
        f"p50 {percentile(ms, 50):.2f}  p95 {percentile(ms, 95):.2f}  "
        f"p99 {percentile(ms, 99):.2f}  mean {statistics.fmean(ms):.2f}  max {max(ms):.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="referrals for the latency figures")
    p.add_argument("--queued", type=int, default=5000, help="referrals queued while B is offline")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one referral")
    p.add_argument("--gap", type=float, default=0.1, help="seconds between two referrals")
    args = p.parse_args(argv)
    if args.n < 1 or args.queued < 0 or args.gap < 0:
        print("referral bench: --n must be >= 1, --queued and --gap >= 0", file=sys.stderr)
        return 2
    try:
        run(args.n, args.queued, args.timeout, args.gap)
    except (BenchError, ClusterError) as exc:
        print(f"referral bench: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
