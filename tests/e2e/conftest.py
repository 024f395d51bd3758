"""One cluster for the end-to-end tests: a hub and two offices as real processes.

Setting up a hub and two enrolled nodes costs about eight seconds of CLI
start-ups, so the cluster is shared by the whole module set (session scope).
Tests therefore never assume an empty database: they follow their own
referral ids and compare counts before and after. The `net` fixture restarts
whatever a previous test left stopped or killed, so any test can run alone or
in any order.

Sync timings are shortened in node.toml (poll 1 s, backoff 0.2..1 s) so that
recovery after an outage takes seconds; `directory_refresh` keeps its default
of an hour, so a test that sees a new or revoked office within seconds proves
the push path, not the timer. Hub and nodes log at debug level: the privacy
test scans the most talkative output there is.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from demo.cluster import Cluster, Node, Office
from demo.processes import Service, cli, free_port

T = TypeVar("T")

FAST_SYNC: dict[str, float | int | bool] = {
    "poll_interval": 1.0,
    "min_backoff": 0.2,
    "max_backoff": 1.0,
    "request_timeout": 5.0,
}
OFFICE_A = Office("Caritas Nürnberg", "Caritas", ("mbe",), ("de", "ar"), "Nürnberg")
OFFICE_B = Office("AWO Fürth", "AWO", ("mbe", "jmd"), ("de", "tr"), "Fürth")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def set_log_level(path: Path, pattern: str, line: str) -> None:
    text, n = re.subn(pattern, line, path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert n == 1, f"{path.name}: no single line matching {pattern}"
    path.write_text(text, encoding="utf-8")


@dataclass
class Net:
    """The shared cluster with the two offices every test uses."""

    cluster: Cluster
    a: Node
    b: Node

    @property
    def hub(self) -> Service:
        assert self.cluster.hub is not None
        return self.cluster.hub

    def hub_query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the hub's database directly (the running hub uses WAL: readers are fine)."""
        with closing(sqlite3.connect(self.cluster.hub_dir / "hub.db", timeout=10)) as conn:
            return list(conn.execute(sql, params))

    def hub_execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Change the hub's database behind its back (to simulate what time would do)."""
        with closing(sqlite3.connect(self.cluster.hub_dir / "hub.db", timeout=10)) as conn:
            conn.execute(sql, params)
            conn.commit()

    def node_query(self, node: Node, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with closing(sqlite3.connect(node.service.data_dir / "node.db", timeout=10)) as conn:
            return list(conn.execute(sql, params))

    def ensure_running(self) -> None:
        for service in (self.hub, self.a.service, self.b.service):
            if service.proc is None or service.proc.poll() is not None:
                service.start()


def _start_hub(cluster: Cluster) -> Service:
    """`Cluster.start_hub`, with the hub's log level raised to debug before it starts."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli("hub", "init", "--dir", str(cluster.hub_dir), "--region", "Mittelfranken", "--url", url)
    set_log_level(cluster.hub_dir / "hub.toml", r"^log_level = .*$", 'log_level = "debug"')
    cluster.hub = Service("hub", cluster.hub_dir, port, cluster.root / "hub.log")
    cluster.hub.start()
    return cluster.hub


def add_office(cluster: Cluster, key: str, office: Office) -> Node:
    """Enroll an office with fast sync and debug logging, then start its node."""
    node = cluster.add_node(key, office, start=False, sync=FAST_SYNC)
    set_log_level(node.service.data_dir / "node.toml", r"^level = .*$", 'level = "debug"')
    node.service.start()
    return node


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    cluster = Cluster(tmp_path_factory.mktemp("e2e"))
    try:
        _start_hub(cluster)
        a = add_office(cluster, "a", OFFICE_A)
        b = add_office(cluster, "b", OFFICE_B)
        cluster.wait_directory()
        yield Net(cluster, a, b)
    finally:
        for node in cluster.nodes.values():
            node.service.kill()
        if cluster.hub is not None:
            cluster.hub.kill()


@pytest.fixture
def net(shared: Net) -> Net:
    """The shared cluster with hub and both nodes running (restarted if a test left them down)."""
    shared.ensure_running()
    return shared
