"""Referral delivery between two offices, through real processes on loopback.

Starts `mbe-hub serve` and two `mbe-node serve` (A and B, WebSocket push on)
through the demo harness and measures, through the nodes' local APIs only:

* latency: A's `POST /referrals/outgoing` returns -> B's
  `GET /referrals/incoming/{id}` finds it (p50, p95, p99 over --n referrals,
  sent one after another; B is polled on a kept-alive connection, so the
  figure includes up to one poll round trip);
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
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from demo.cluster import Cluster, Node, Office
from demo.processes import ClusterError

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


def measure_latency(a: Node, b: Node, case_id: str, n: int, timeout: float) -> list[float]:
    """Seconds from A's API answer to B's API showing the referral, n times in a row."""
    send, poll = client(a), client(b)
    body = referral_body(case_id, b)
    out: list[float] = []
    try:
        for i in range(n):
            rid = send.ok("POST", f"{API}/referrals/outgoing", body)["id"]
            t0 = time.perf_counter()
            while True:
                status, _ = poll.call("GET", f"{API}/referrals/incoming/{rid}")
                if status == 200:
                    break
                if status != 404:
                    raise BenchError(f"B answered {status} for an incoming referral")
                if time.perf_counter() - t0 > timeout:
                    raise BenchError(f"referral {i + 1} did not reach B within {timeout} s")
                time.sleep(0.001)
            out.append(time.perf_counter() - t0)
    finally:
        send.close()
        poll.close()
    return out


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


def run(n: int, queued: int, timeout: float) -> None:
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
        lat = measure_latency(a, b, case_id, n, timeout)
        ms = [x * 1000 for x in lat]
        print(f"latency A -> B over {n} referrals, push on (ms):")
        print(
            f"  p50 {percentile(ms, 50):.1f}  p95 {percentile(ms, 95):.1f}  "
            f"p99 {percentile(ms, 99):.1f}  mean {statistics.fmean(ms):.1f}  max {max(ms):.1f}"
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="referrals for the latency figures")
    p.add_argument("--queued", type=int, default=5000, help="referrals queued while B is offline")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one referral")
    args = p.parse_args(argv)
    if args.n < 1 or args.queued < 0:
        print("referral bench: --n must be >= 1 and --queued >= 0", file=sys.stderr)
        return 2
    try:
        run(args.n, args.queued, args.timeout)
    except (BenchError, ClusterError) as exc:
        print(f"referral bench: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
