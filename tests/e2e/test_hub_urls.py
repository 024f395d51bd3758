"""A node with two URLs of its hub, as real processes: `mbe-node enroll --hub A
--hub B`, referrals through the first URL, then the first URL goes away and
referrals, receipts and push carry on through the second.

The hub here is one `mbe-hub serve` (SQLite) reached at two addresses: its own
port, and a TCP relay in this test process. To the node that is one hub at two
URLs, as several hub processes behind several addresses are; closing the relay
(listening socket and every open connection) is the first URL's hub process
dying. Its own small cluster (one test), so the shared one keeps its two offices.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from demo.cluster import Cluster, Node, NodeApi, Office, set_sync_options
from demo.processes import Service, cli_batch
from tests.e2e.conftest import FAST_SYNC, OFFICE_A, OFFICE_B, wait_for
from tests.e2e.helpers import consented_referral, in_state, incoming_ids, status


class Relay:
    """A second address of a local port: a TCP forwarder on threads."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self._port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        """The address goes away: nothing listens, every connection through it is cut."""
        for sock in (self._listener, *self._open):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@dataclass
class TwoUrls:
    cluster: Cluster
    relay: Relay
    a: Node  # enrolled with [relay, hub]
    b: Node  # enrolled with the hub's own URL

    @property
    def hub_url(self) -> str:
        assert self.cluster.hub is not None
        return self.cluster.hub.url


def _site_add(cluster: Cluster, office: Office) -> list[str]:
    args = ["site", "add", "--dir", str(cluster.hub_dir), "--name", office.name]
    args += ["--org", office.org, "--area", office.area]
    for service in office.services:
        args += ["--service", service]
    return [*args, "--language", "de"]


def _set_up(cluster: Cluster, offices: dict[str, tuple[Office, list[str]]]) -> dict[str, Node]:
    """For each office `site add`, `init`, `enroll` with its hub URLs and `token create`,
    in one interpreter per program (each start-up costs about 1.5 s of CPU)."""
    added = cli_batch("hub", [_site_add(cluster, office) for office, _ in offices.values()])
    commands = []
    for (key, (_office, urls)), out in zip(offices.items(), added, strict=True):
        code = re.search(r"enrollment code:\s+(\S+)", out)
        assert code is not None
        where = str(cluster.root / key)
        hubs = [arg for url in urls for arg in ("--hub", url)]
        commands += [
            ["init", "--dir", where],
            ["enroll", "--dir", where, *hubs, "--code", code[1]],
            ["token", "create", "--dir", where, "--name", "app"],
        ]
    outs = iter(cli_batch("node", commands))
    nodes = {}
    for key, (office, urls) in offices.items():
        node_dir = cluster.root / key
        set_sync_options(node_dir, FAST_SYNC)
        _init, enrolled, token = next(outs), next(outs), next(outs)
        node_id = re.search(r"Enrolled as (\S+) with (.*)$", enrolled, flags=re.MULTILINE)
        assert node_id is not None
        assert node_id[2] == ", ".join(urls)
        port = cluster._unused_port()  # the cluster's bookkeeping of ports handed out
        service = Service("node", node_dir, port, cluster.root / f"{key}.log")
        api = NodeApi(service.url, token.strip().splitlines()[-1])
        nodes[key] = cluster.nodes[key] = Node(office, node_id[1], service, api)
    return nodes


@pytest.fixture
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoUrls]:
    cluster = Cluster(tmp_path_factory.mktemp("hub-urls"))
    relay: Relay | None = None
    try:
        hub = cluster.start_hub(grace_days=None)
        relay = Relay(hub.port)
        nodes = _set_up(
            cluster, {"a": (OFFICE_A, [relay.url, hub.url]), "b": (OFFICE_B, [hub.url])}
        )
        for node in nodes.values():
            node.service.start()
        cluster.wait_directory()
        yield TwoUrls(cluster, relay, nodes["a"], nodes["b"])
    finally:
        for node in cluster.nodes.values():
            node.service.kill()
        if cluster.hub is not None:
            cluster.hub.kill()
        if relay is not None:
            relay.close()


def test_referrals_go_on_through_the_second_url_when_the_first_goes_away(
    setup: TwoUrls,
) -> None:
    """Through the first URL, then through the second once it is gone: every referral
    arrives once, its receipt comes back, push reconnects, status names the URL in use."""
    a, b = setup.a, setup.b
    first = consented_referral(a, b, family_name="Haddad")
    wait_for(lambda: in_state(a, first["id"], "delivered"), "A sees the first receipt")
    st = status(a)
    assert (st["hub_url"], st["hub_urls"]) == (setup.relay.url, [setup.relay.url, setup.hub_url])

    setup.relay.close()
    second = consented_referral(a, b, family_name="Yilmaz")
    wait_for(lambda: in_state(a, second["id"], "delivered"), "A sees the second receipt")
    st = wait_for(lambda: (s := status(a))["push_connected"] and s, "A's push is back")
    assert st["hub_url"] == setup.hub_url
    assert st["hub_reachable"] is True
    assert st["outbox_depth"] == 0
    # B accepts: the answer reaches A through the second URL as well.
    b.api.post(f"/api/v1/referrals/incoming/{second['id']}/accept", {})
    wait_for(lambda: in_state(a, second["id"], "accepted"), "A sees the acceptance")
    received = [r for r in incoming_ids(b) if r in (first["id"], second["id"])]
    assert sorted(received) == sorted([first["id"], second["id"]])
    changes = [line for line in a.service.log_text().splitlines() if "hub.url_changed" in line]
    assert changes
    assert all(setup.hub_url in line and setup.relay.url in line for line in changes)
