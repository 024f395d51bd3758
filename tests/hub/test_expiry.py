"""Expired messages are removed and the sender gets a hub-signed notice."""

from __future__ import annotations

from hub.maintenance import run_once
from protocol.envelope import Envelope, open_envelope
from protocol.ids import HUB_ID
from protocol.payloads import ExpiryNotice
from tests.hub.client import referral
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db


async def test_expiry_notice_reaches_the_sender(hub: Hub) -> None:
    """After expiry the message is gone for the recipient and the sender can open a notice."""
    a, b = await hub.node("Sender Office"), await hub.node("Recipient Office")
    env = referral(a, b.node_id, b.keys.public, now=hub.clock.now(), ttl=3600)
    keep = referral(a, b.node_id, b.keys.public, now=hub.clock.now(), ttl=7200)
    await hub.client(a).upload([env.encode(), keep.encode()])
    assert await run_once(hub.app, hub.clock.now()) == set()
    hub.clock.advance(3600)
    assert await run_once(hub.app, hub.clock.now()) == {a.node_id}
    assert [m["id"] for m in (await hub.client(b).fetch())["messages"]] == [keep.msg_id]
    page = await hub.client(a).fetch()
    assert len(page["messages"]) == 1
    notice_env = Envelope.decode(page["messages"][0]["envelope"])
    assert notice_env.sender == HUB_ID
    inner = open_envelope(notice_env, a.keys, a.node_id, a.hub_keys, now=hub.clock.now())
    assert inner.payload == ExpiryNotice(
        of_msg_id=env.msg_id, recipient=b.node_id, expired=hub.clock.now()
    )
    with hub_db(hub.settings) as conn:
        row = conn.execute("SELECT expired FROM relay_log WHERE msg_id = ?", (env.msg_id,))
        assert row.fetchone() == (hub.clock.now(),)


async def test_expired_notice_makes_no_further_notice(hub: Hub) -> None:
    """A notice that itself expires unfetched is removed without a notice to the hub."""
    a, b = await hub.node("Sender Two"), await hub.node("Recipient Two")
    env = referral(a, b.node_id, b.keys.public, now=hub.clock.now(), ttl=3600)
    await hub.client(a).upload([env.encode()])
    hub.clock.advance(3600)
    await run_once(hub.app, hub.clock.now())
    hub.clock.advance(hub.settings.relay.notice_ttl)
    assert await run_once(hub.app, hub.clock.now()) == set()
    with hub_db(hub.settings) as conn:
        assert conn.execute("SELECT count(*) FROM queue").fetchone() == (0,)
