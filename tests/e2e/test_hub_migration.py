"""A populated SQLite hub moved to PostgreSQL with `mbe-hub db migrate`; the offices carry
on without noticing (issue 14 acceptance test).

A hub on SQLite (the default) and three offices as real processes. Referrals go
back and forth, some answered; then office B is stopped and offers and an answer
for it wait in the hub's queue. The hub is stopped (SIGTERM), its database copied
into an empty PostgreSQL database, `[database] url` added to hub.toml, and the hub
started again on the same port, so every node keeps its hub URL. Then B starts.

Checked: /health names the engine before and after; hub.db is the same file, byte
for byte, after the copy (and after the hub ran on PostgreSQL: the fallback stays
intact); the copied queue is what SQLite held; B gets each waiting message exactly
once; new referrals and their answers flow between all three offices; every node
polls once an hour, so a delivery within seconds after the switch proves push; and
over the whole run every message a node sent was relayed once and applied once by
its recipient (the nodes' logs, their inbox_seen and sent_log, and the hub's
relay_log agree), and every referral arrived exactly once.

Its own cluster and database, like test_hub_cluster.py: the shared e2e cluster
stays on SQLite.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest

from demo.cluster import Cluster, Node, Office, set_sync_options
from demo.processes import Service, cli
from tests.e2e.conftest import FAST_SYNC, wait_for
from tests.e2e.helpers import consented_referral, in_state, incoming_ids, outgoing, states, status

# Every node polls once an hour: what arrives within PUSH_WITHIN seconds was pushed.
SLOW_POLL, PUSH_WITHIN = 3600.0, 5.0

OFFICES = {
    "a": Office("Caritas Nürnberg", "Caritas", ("mbe",), ("de",), "Nürnberg"),
    "b": Office("AWO Fürth", "AWO", ("mbe",), ("de",), "Fürth"),
    "c": Office("Diakonie Erlangen", "Diakonie", ("mbe",), ("de",), "Erlangen"),
}


@dataclass
class Migration:
    cluster: Cluster
    hub: Service
    a: Node
    b: Node
    c: Node
    pg_url: str

    @property
    def nodes(self) -> list[Node]:
        return [self.a, self.b, self.c]

    @property
    def hub_db(self) -> Path:
        return self.cluster.hub_dir / "hub.db"

    def sqlite(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read hub.db (read-only URI: the file must stay as the copy left it)."""
        uri = f"{self.hub_db.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
            return list(conn.execute(sql, params))

    def pg(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg_url) as conn:
            return list(conn.execute(sql, params).fetchall())


def _start(cluster: Cluster) -> list[Node]:
    """The hub on SQLite and the three offices, enrolled, running, each polling hourly."""
    cluster.start_hub(grace_days=None)
    nodes = cluster.add_nodes(list(OFFICES.items()))
    for node in nodes:
        set_sync_options(node.service.data_dir, FAST_SYNC | {"poll_interval": SLOW_POLL})
        node.service.start()
    cluster.wait_directory()
    return nodes


@pytest.fixture
def mig(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Migration]:
    """The cluster, started while the PostgreSQL cluster starts (both take seconds)."""
    cluster = Cluster(tmp_path_factory.mktemp("hub-migration"))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            started = pool.submit(_start, cluster)
            pg_url: str = request.getfixturevalue("pg_url")
            a, b, c = started.result()
        assert cluster.hub is not None
        yield Migration(cluster, cluster.hub, a, b, c, pg_url)
    finally:
        for node in cluster.nodes.values():
            node.service.kill()
        if cluster.hub is not None:
            cluster.hub.kill()


def _health(hub: Service) -> dict[str, Any]:
    with urllib.request.urlopen(hub.url + "/health", timeout=10) as r:  # noqa: S310 (loopback)
        answer: dict[str, Any] = json.loads(r.read())
    return answer


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _node_rows(node: Node, sql: str) -> list[tuple[Any, ...]]:
    path = node.service.data_dir / "node.db"
    with closing(sqlite3.connect(path, timeout=10)) as conn:
        return list(conn.execute(sql))


def _log_events(node: Node, event: str) -> list[dict[str, Any]]:
    """The node's JSON log lines of one event, over all its runs (the log is appended)."""
    found = []
    for line in node.service.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == event:
                found.append(entry)
    return found


def _quiet(m: Migration, *running: Node) -> None:
    """Wait until the running nodes' outboxes are empty and the hub holds nothing for them."""
    for node in running:
        wait_for(partial(_outbox_empty, node), f"{node.office.name}'s outbox")
    ids = tuple(n.node_id for n in running)
    marks = ", ".join("?" * len(ids))
    query = f"SELECT count(*) FROM queue WHERE recipient IN ({marks})"  # noqa: S608 (placeholders)
    wait_for(lambda: m.sqlite(query, ids)[0][0] == 0, "the hub's queue for the running nodes")


def _quiet_pg(m: Migration) -> None:
    """`_quiet` for all three nodes once the hub is on PostgreSQL."""
    for node in m.nodes:
        wait_for(partial(_outbox_empty, node), f"{node.office.name}'s outbox")
    wait_for(lambda: m.pg("SELECT count(*) FROM queue")[0][0] == 0, "the queue to drain")


def _outbox_empty(node: Node) -> bool:
    return bool(status(node)["outbox_depth"] == 0)


def _push_up(node: Node) -> bool:
    return bool(status(node)["push_connected"])


def _accept(node: Node, ref_id: str) -> None:
    node.api.post(f"/api/v1/referrals/incoming/{ref_id}/accept", {})


def _received(node: Node, ref_id: str, what: str, timeout: float = 20.0) -> None:
    wait_for(partial(in_state, node, ref_id, "received", out=False), what, timeout)


def _sees(node: Node, ref_id: str, state: str, what: str) -> None:
    wait_for(partial(in_state, node, ref_id, state), what)


def test_sqlite_hub_moves_to_postgresql_and_the_offices_carry_on(mig: Migration) -> None:
    a, b, c, hub = mig.a, mig.b, mig.c, mig.hub
    sent_to: dict[str, list[str]] = {n.node_id: [] for n in mig.nodes}

    def send(sender: Node, recipient: Node, name: str) -> str:
        ref = consented_referral(sender, recipient, family_name=name)
        sent_to[recipient.node_id].append(ref["id"])
        return str(ref["id"])

    # --- on SQLite: referrals in every direction, some answered.
    assert _health(hub)["database"]["engine"] == "sqlite"
    ab = send(a, b, "Haddad")
    ca = send(c, a, "Yilmaz")
    ac = send(a, c, "Kowalski")
    ba = send(b, a, "Nowak")
    _received(b, ab, "B receives A's referral")
    _accept(b, ab)
    _sees(a, ab, "accepted", "A sees B's acceptance")
    _received(a, ca, "A receives C's referral")
    a.api.post(f"/api/v1/referrals/incoming/{ca}/decline", {"reason": "no_capacity"})
    _sees(c, ca, "declined", "C sees A's decline")
    _received(c, ac, "C receives A's referral")  # left unanswered
    _received(a, ba, "A receives B's referral")
    _sees(b, ba, "delivered", "B sees A's receipt")
    _quiet(mig, a, b, c)

    # --- B stops; offers and an answer for it wait at the hub.
    b.service.stop()
    ab_queued = send(a, b, "Schmidt")
    cb_queued = send(c, b, "Petrovic")
    _accept(a, ba)  # the acceptance waits for B
    _quiet(mig, a, c)
    queued = mig.sqlite(
        "SELECT seq, msg_id, sender FROM queue WHERE recipient = ? ORDER BY seq", (b.node_id,)
    )
    assert len(queued) == 3, queued
    assert Counter(sender for _, _, sender in queued) == {a.node_id: 2, c.node_id: 1}
    assert mig.sqlite("SELECT count(*) FROM queue")[0][0] == 3

    # --- the move: stop, copy, point hub.toml at PostgreSQL, start on the same port.
    hub.stop()
    wal = mig.hub_db.with_name("hub.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "a stopped hub leaves no WAL to lose"
    before = _sha256(mig.hub_db)
    started = time.monotonic()
    out = cli("hub", "db", "migrate", "--dir", str(mig.cluster.hub_dir), "--to", mig.pg_url)
    copy_seconds = time.monotonic() - started
    assert "copied and verified" in out, out
    assert _sha256(mig.hub_db) == before, "db migrate changed hub.db"
    assert not wal.exists() or wal.stat().st_size == 0
    # The queue as SQLite held it: same seqs, ids and senders, nothing else.
    assert mig.pg("SELECT seq, msg_id, sender FROM queue ORDER BY seq") == queued
    with (mig.cluster.hub_dir / "hub.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[database]\nurl = "{mig.pg_url}"\n')
    port = hub.port
    hub.start()
    assert hub.port == port
    health = _health(hub)
    assert health["status"] == "ok", health
    assert health["database"]["engine"] == "postgresql", health

    # --- B comes back: each waiting message exactly once, receipts back to A and C.
    b.service.start()
    _received(b, ab_queued, "B receives A's queued referral")
    _received(b, cb_queued, "B receives C's queued referral")
    _sees(b, ba, "accepted", "B sees A's queued acceptance")
    _sees(a, ab_queued, "delivered", "A sees B's receipt")
    _sees(c, cb_queued, "delivered", "C sees B's receipt")
    wait_for(lambda: mig.pg("SELECT count(*) FROM queue")[0][0] == 0, "the queue to drain")
    applied_b = Counter(e["msg_id"] for e in _log_events(b, "inbox.applied"))
    for _, msg_id, _ in queued:
        assert applied_b[msg_id] == 1, msg_id

    # --- new referrals and answers, both ways; every node polls hourly: push.
    for node in mig.nodes:
        wait_for(partial(_push_up, node), f"{node.office.name}'s push connection")
    pushed_at = time.monotonic()
    ac_new = send(a, c, "Hodzic")
    _received(c, ac_new, "C receives A's new referral by push", PUSH_WITHIN)
    push_seconds = time.monotonic() - pushed_at
    _accept(c, ac_new)
    _sees(a, ac_new, "accepted", "A sees C's acceptance")
    ba_new = send(b, a, "Lejla")
    cb_new = send(c, b, "Dragan")
    _received(a, ba_new, "A receives B's new referral")
    _received(b, cb_new, "B receives C's new referral")
    _accept(a, ba_new)
    b.api.post(f"/api/v1/referrals/incoming/{cb_new}/decline", {"reason": "no_capacity"})
    _sees(b, ba_new, "accepted", "B sees A's acceptance")
    _sees(c, cb_new, "declined", "C sees B's decline")
    b.api.post(f"/api/v1/referrals/incoming/{ab}/status", {"outcome": "first_appointment"})
    _sees(a, ab, "first_appointment", "A sees B's status on a referral from before the move")
    _quiet_pg(mig)

    # --- the whole run: nothing lost, nothing twice.
    assert states(outgoing(a, ab)) == ["sent", "delivered", "accepted", "first_appointment"]
    assert states(outgoing(b, ba)) == ["sent", "delivered", "accepted"]
    assert states(outgoing(a, ab_queued)) == ["sent", "delivered"]
    assert states(outgoing(a, ac)) == ["sent", "delivered"]
    for node in mig.nodes:
        got = Counter(incoming_ids(node))
        assert got == Counter(sent_to[node.node_id]), node.office.name
    relayed = mig.pg("SELECT msg_id, sender, recipient, acked FROM relay_log")
    assert all(acked is not None for *_, acked in relayed), "relayed but never acknowledged"
    for node in mig.nodes:
        applied = Counter(e["msg_id"] for e in _log_events(node, "inbox.applied"))
        assert applied, f"{node.office.name} applied nothing"
        assert max(applied.values()) == 1, f"{node.office.name} applied a message twice"
        assert _log_events(node, "inbox.duplicate") == [], f"{node.office.name} got a duplicate"
        assert _node_rows(node, "SELECT count(*) FROM refused") == [(0,)]
        seen = {msg_id for (msg_id,) in _node_rows(node, "SELECT msg_id FROM inbox_seen")}
        to_node = {m for m, _, r, _ in relayed if r == node.node_id}
        assert set(applied) == seen == to_node, node.office.name
        sent = {msg_id for (msg_id,) in _node_rows(node, "SELECT msg_id FROM sent_log")}
        assert sent == {m for m, s, _, _ in relayed if s == node.node_id}, node.office.name
    # The PostgreSQL hub never wrote to the fallback.
    assert _sha256(mig.hub_db) == before, "the hub on PostgreSQL changed hub.db"
    print(
        f"\nhub migration: queued_for_b={len(queued)} relayed={len(relayed)}"
        f" copy={copy_seconds:.2f}s push={push_seconds:.2f}s"
    )
