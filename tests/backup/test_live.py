"""Backups of a running hub and node (real processes) restore to working services."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.cluster import Cluster, Node, Office
from demo.processes import Service
from tests.backup.conftest import dump

ROOT = Path(__file__).resolve().parents[2]
OFFICE = Office("Caritas Test", "Caritas", ("mbe",), ("de",), "Nürnberg")


def _cli(program: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", f"{program}.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _open_case(node: Node, n: int) -> str:
    body = {"case_type": "case_management", "pseudonym": f"P-{n:05d}", "family_name": "Muster"}
    case: dict[str, Any] = node.api.post("/api/v1/cases", body)
    return str(case["id"])


def _rows(db: Path, table: str) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {str(r[0]): tuple(r) for r in conn.execute(f"SELECT * FROM {table}")}  # noqa: S608 (fixed names)
    finally:
        conn.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "live")
    c.root.mkdir()
    try:
        yield c
    finally:
        c.stop()


def test_backup_of_running_services_restores_to_working_ones(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Hub and node backed up while serving (and while cases are written) restore and sync."""
    hub = cluster.start_hub()
    node = cluster.add_node("a", OFFICE)
    cluster.wait_directory()
    before = [_open_case(node, n) for n in range(20)]

    stop = threading.Event()
    during: list[str] = []

    def keep_writing() -> None:
        n = 100
        while not stop.is_set():
            during.append(_open_case(node, n))
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        time.sleep(0.2)
        node_dir, hub_dir = str(node.service.data_dir), str(cluster.hub_dir)
        _cli("node", "backup", "--dir", node_dir, "--out", str(tmp_path / "n.tar"), "--unencrypted")
        _cli("hub", "backup", "--dir", hub_dir, "--out", str(tmp_path / "h.tar"), "--unencrypted")
        time.sleep(0.2)
    finally:
        stop.set()
        writer.join()
    cluster.stop()
    assert during, "the writer opened cases while the backup ran"

    _cli("node", "restore", "--from", str(tmp_path / "n.tar"), "--dir", str(tmp_path / "node2"))
    _cli("hub", "restore", "--from", str(tmp_path / "h.tar"), "--dir", str(tmp_path / "hub2"))

    live_cases = _rows(node.service.data_dir / "node.db", "cases")
    restored_cases = _rows(tmp_path / "node2" / "node.db", "cases")
    assert set(before) <= set(restored_cases)
    assert all(live_cases[k] == row for k, row in restored_cases.items())
    assert len(restored_cases) < len(live_cases)  # writes after the snapshot are not in it
    for table in ("app_tokens", "enrollment", "directory"):
        assert (
            dump(tmp_path / "node2" / "node.db")[table]
            == dump(node.service.data_dir / "node.db")[table]
        )
    assert _rows(tmp_path / "hub2" / "hub.db", "sites") == _rows(
        cluster.hub_dir / "hub.db", "sites"
    )

    # The restored pair runs: same hub URL (port), same app token, and the node
    # accepts the restored hub's directory thanks to the version jump.
    hub2 = Service("hub", tmp_path / "hub2", hub.port, tmp_path / "hub2.log")
    node2 = Service("node", tmp_path / "node2", node.service.port, tmp_path / "node2.log")
    hub2.start()
    try:
        node2.start()
        try:
            node.api.base = node2.url
            listed: set[str] = set()
            while page := node.api.get(f"/api/v1/cases?limit=500&offset={len(listed)}")["cases"]:
                listed |= {c["id"] for c in page}
            assert listed == set(restored_cases)
            deadline = time.monotonic() + 20
            while node.api.get("/api/v1/status")["directory_version"] < 1_000_000:
                assert time.monotonic() < deadline, json.dumps(node.api.get("/api/v1/status"))
                time.sleep(0.2)
        finally:
            node2.stop()
    finally:
        hub2.stop()
