"""A large backlog (issue 11): acks by message id, many rows per INSERT, old and new ids.

The envelopes here are outer envelopes with random ciphertext: the hub never
opens the ciphertext, and sealing a thousand messages would only cost time.
"""

from __future__ import annotations

import os

from hub import relay
from hub.context import DB
from hub.storage.db import connect
from protocol.envelope import Envelope
from protocol.ids import time_ordered_id
from tests.hub.client import Node
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db


def _envelopes(hub: Hub, sender: Node, recipient: Node, n: int) -> list[Envelope]:
    """Half with time-ordered ids (current nodes), half with random ones (older nodes)."""
    now = hub.clock.now()
    out = []
    for i in range(n):
        ordered = time_ordered_id(now * 1000 + i, os.urandom(10))
        msg_id = os.urandom(16).hex() if i % 2 else ordered
        out.append(
            Envelope(msg_id, sender.node_id, recipient.node_id, now + 3600, os.urandom(64 + i % 7))
        )
    return out


async def _upload(hub: Hub, sender: Node, envs: list[Envelope]) -> None:
    batch = hub.settings.relay.max_batch
    for start in range(0, len(envs), batch):
        ans = await hub.client(sender).upload([e.encode() for e in envs[start : start + batch]])
        assert ans["rejected"] == []


async def _inbox(hub: Hub, node: Node) -> list[str]:
    seen: list[str] = []
    after = 0
    while True:
        page = await hub.client(node).fetch(after=after, limit=hub.settings.relay.max_batch)
        seen += [m["id"] for m in page["messages"]]
        after = page["next"]
        if not page["more"]:
            return seen


async def test_an_ack_in_a_large_backlog_removes_exactly_the_acked_ids(hub: Hub) -> None:
    a, b, c = await hub.node("Office A"), await hub.node("Office B"), await hub.node("Office C")
    to_b = _envelopes(hub, a, b, 1300)
    to_c = _envelopes(hub, a, c, 20)
    await _upload(hub, a, to_b)
    await _upload(hub, a, to_c)

    # More than one statement's worth (500), spread over the backlog, some twice;
    # with C's ids and unknown ids among them, which B cannot delete.
    acked = [e.msg_id for i, e in enumerate(to_b) if i % 3 != 1]
    foreign = [e.msg_id for e in to_c[:5]] + [os.urandom(16).hex() for _ in range(5)]
    hub.clock.advance(7)
    assert await hub.client(b).ack(acked + acked[:40] + foreign) == len(acked)

    left = [e.msg_id for i, e in enumerate(to_b) if i % 3 == 1]
    assert await _inbox(hub, b) == left
    assert await _inbox(hub, c) == [e.msg_id for e in to_c]
    with hub_db(hub.settings) as conn:
        marked = conn.execute("SELECT msg_id FROM relay_log WHERE acked = ?", (hub.clock.now(),))
        assert sorted(r[0] for r in marked) == sorted(acked)
        (usage,) = conn.execute(
            "SELECT bytes FROM queue_usage WHERE sender = ?", (a.node_id,)
        ).fetchone()
        kept = [e for i, e in enumerate(to_b) if i % 3 == 1] + to_c
        assert usage == sum(len(e.encode()) for e in kept)


def test_the_ack_delete_is_planned_on_the_message_id_not_on_the_inbox() -> None:
    """SQLite's own choice for `recipient = ? AND msg_id IN (...)` was the inbox index,
    a scan of the recipient's backlog for every ack."""
    db = connect(":memory:")
    for n in (1, 100, 500):
        plan = db.execute(f"EXPLAIN QUERY PLAN {relay.ack_delete_sql(n)}", ["x"] * (n + 1))
        details = [row[3] for row in plan.fetchall()]
        assert len(details) == 1, details
        assert "(msg_id=?)" in details[0]
        assert "queue_inbox" not in details[0]


async def test_a_batch_larger_than_one_insert_statement_is_stored_whole_in_order(
    hub: Hub,
) -> None:
    a, b = await hub.node("Office A"), await hub.node("Office B")
    envs = _envelopes(hub, a, b, 1234)
    blobs = [e.encode() for e in envs]
    now = hub.clock.now()
    result = await hub.app[DB].run(relay.store_batch, hub.settings, a.node_id, blobs, now)
    assert result.accepted == [e.msg_id for e in envs]
    with hub_db(hub.settings) as conn:
        rows = conn.execute("SELECT msg_id, envelope FROM queue ORDER BY seq").fetchall()
        assert rows == [(e.msg_id, blob) for e, blob in zip(envs, blobs, strict=True)]
        logged = conn.execute("SELECT msg_id, size FROM relay_log").fetchall()
        assert sorted(logged) == sorted(
            (e.msg_id, len(b)) for e, b in zip(envs, blobs, strict=True)
        )
        usage = conn.execute("SELECT bytes FROM queue_usage WHERE sender = ?", (a.node_id,))
        assert usage.fetchone() == (sum(len(b) for b in blobs),)
