"""Memory of an idle node next to a bare aiohttp process, both real processes.

A script, not a test: `python -m bench.node_idle [--settle 10]`.

Starts a hub and one enrolled `mbe-node serve` with WebSocket push on through
the demo harness, lets it settle (its sync cycle, directory fetch, push
connection and housekeeping have run), and reads its resident set size from
/proc. Then it starts a bare aiohttp process serving one JSON route and reads
the same figure. It prints both and the ratio.

Both run with only the packages of a production install: the development
environment also holds the test extra (numpy, scipy, openapi-core, rich,
...), and some runtime libraries import an optional package when it is
present (sqlite-utils imports numpy, structlog imports rich), which no
production node has. So both processes start with a `sitecustomize` that
makes every module of a distribution pinned only in requirements-test.lock
unimportable. The list is derived from the two lock files, not written here.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.utils import canonicalize_name

from bench.referral import BARE_SERVER, OFFICE_A, BenchError
from demo.cluster import Cluster
from demo.processes import ClusterError, free_port

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)


def _pinned(lock: Path) -> set[str]:
    return {canonicalize_name(m[1]) for m in _PIN.finditer(lock.read_text(encoding="utf-8"))}


def test_only_modules() -> list[str]:
    """Top-level modules of distributions in the test lock but not the runtime lock."""
    test_only = _pinned(ROOT / "requirements-test.lock") - _pinned(ROOT / "requirements.lock")
    modules = {
        module
        for module, dists in packages_distributions().items()
        if module.isidentifier() and all(canonicalize_name(d) in test_only for d in dists)
    }
    return sorted(modules)


def production_site(root: Path, hidden: list[str]) -> Path:
    """A directory whose sitecustomize hides `hidden` from every import."""
    site = root / "production-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import sys\nfor _name in {hidden!r}:\n    sys.modules.setdefault(_name, None)\n",
        encoding="utf-8",
    )
    return site


def rss_kib(pid: int) -> int:
    """The process's current resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for process {pid}")


def node_rss(root: Path, site: Path, settle: float) -> int:
    cluster = Cluster(root / "cluster")
    try:
        cluster.start_hub()
        node = cluster.add_node("a", OFFICE_A, start=False, sync={"push": True})
        node.service.extra_env["PYTHONPATH"] = str(site)
        node.service.start()
        deadline = time.monotonic() + 30
        while not node.api.get("/api/v1/status")["push_connected"]:
            if time.monotonic() > deadline:
                raise BenchError("the node did not connect its push channel")
            time.sleep(0.2)
        time.sleep(settle)
        proc = node.service.proc
        if proc is None:
            raise BenchError("the node is not running")
        return rss_kib(proc.pid)
    finally:
        cluster.stop()


def bare_rss(site: Path, settle: float) -> int:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)], env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("the bare aiohttp process did not start")
            time.sleep(0.1)
        time.sleep(settle)
        return rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=10.0, help="seconds idle before reading")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mbe-bench-idle-"))
    try:
        hidden = test_only_modules()
        site = production_site(root, hidden)
        node = node_rss(root, site, args.settle)
        bare = bare_rss(site, args.settle)
    except (BenchError, ClusterError) as exc:
        print(f"node idle bench: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"idle RSS, production packages only ({len(hidden)} test-only modules hidden):")
    print(f"  node (push connected, {args.settle:.0f} s idle): {node / 1024:6.1f} MiB")
    print(f"  ceiling (bare aiohttp process):        {bare / 1024:6.1f} MiB")
    print(f"  ratio:                                 {node / bare:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
