"""Per-node queue quota: an upload that would exceed it is refused whole, as "try later"."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from hub.app import create_app
from hub.errors import ConfigError
from hub.maintenance import run_once
from hub.settings import HubSettings, RelaySettings
from node.sync.client import HubClient as NodeHubClient
from node.sync.errors import HubUnreachable
from protocol.encoding import pack
from protocol.ids import HUB_ID
from tests.clocks import clocked
from tests.hub.client import Node, problem_kind, referral
from tests.hub.conftest import FakeClock, Hub
from tests.hub.engines import hub_db

QUOTA = 64 << 10
NOTE = "x" * 3000  # about 4 KiB per sealed envelope


@pytest.fixture
async def small_hub(settings: HubSettings, clock: FakeClock, aiohttp_client: AiohttpClient) -> Hub:
    relay = replace(settings.relay, max_body=QUOTA, max_queue_bytes_per_node=QUOTA)
    small = replace(settings, relay=relay)
    app = create_app(small, deps=clocked(clock))
    return Hub(small, clock, app, await aiohttp_client(app))


def _envelopes(hub: Hub, sender: Node, recipient: Node, n: int) -> list[bytes]:
    now = hub.clock.now()
    return [
        referral(sender, recipient.node_id, recipient.keys.public, now=now, note=NOTE).encode()
        for _ in range(n)
    ]


def _queued(hub: Hub, sender: str) -> tuple[int, int]:
    with hub_db(hub.settings) as conn:
        count, size = conn.execute(
            "SELECT count(*), coalesce(sum(length(envelope)), 0) FROM queue WHERE sender = ?",
            (sender,),
        ).fetchone()
        row = conn.execute("SELECT bytes FROM queue_usage WHERE sender = ?", (sender,)).fetchone()
    assert (row[0] if row else 0) == size  # the trigger-kept counter matches the queue
    return int(count), int(size)


async def test_upload_over_the_quota_is_refused_whole_and_taken_after_delivery(
    small_hub: Hub,
) -> None:
    """The batch that would pass the quota gets 429 quota-exceeded and stores nothing."""
    hub = small_hub
    a, b = await hub.node("Sender Office"), await hub.node("Recipient Office")
    first = _envelopes(hub, a, b, 10)
    await hub.client(a).upload(first)
    before = _queued(hub, a.node_id)
    assert before[0] == 10
    over = _envelopes(hub, a, b, 8)
    resp = await hub.client(a).signed("POST", "/v1/messages", pack({"envelopes": over}))
    assert resp.status == 429
    assert problem_kind(await resp.json()) == "quota-exceeded"
    assert _queued(hub, a.node_id) == before
    # Re-sending what is already queued costs nothing and is still accepted.
    assert len((await hub.client(a).upload(first))["accepted"]) == 10
    # Once the recipient fetched and acknowledged, the same batch goes through.
    page = await hub.client(b).fetch()
    assert await hub.client(b).ack([m["id"] for m in page["messages"]]) == 10
    assert _queued(hub, a.node_id) == (0, 0)
    assert len((await hub.client(a).upload(over))["accepted"]) == 8
    assert _queued(hub, a.node_id)[0] == 8


async def test_one_nodes_quota_does_not_limit_another(small_hub: Hub) -> None:
    """The quota is per sending node: a full sender does not block the others."""
    hub = small_hub
    a, b, c = await hub.node("Full Office"), await hub.node("Other Office"), await hub.node("Dest")
    await hub.client(a).upload(_envelopes(hub, a, c, 14))
    full = await hub.client(a).signed(
        "POST", "/v1/messages", pack({"envelopes": _envelopes(hub, a, c, 4)})
    )
    assert full.status == 429
    assert len((await hub.client(b).upload(_envelopes(hub, b, c, 14)))["accepted"]) == 14


async def test_metrics_show_the_fullest_node_and_the_quota(small_hub: Hub) -> None:
    """/metrics reports the largest per-node queued bytes and the configured quota."""
    hub = small_hub
    a, b = await hub.node("Metric Sender"), await hub.node("Metric Recipient")
    await hub.client(a).upload(_envelopes(hub, a, b, 3))
    text = await (await hub.http.get("/metrics")).text()
    assert f"mbe_hub_queue_max_node_bytes {_queued(hub, a.node_id)[1]}" in text
    assert f"mbe_hub_queue_node_quota_bytes {QUOTA}" in text
    assert _queued(hub, HUB_ID) == (0, 0)


async def test_the_node_client_treats_the_refusal_as_try_later(small_hub: Hub) -> None:
    """The node's hub client takes quota-exceeded as HubUnreachable (keep and retry)."""
    hub = small_hub
    a, b = await hub.node("Node Client Office"), await hub.node("Node Client Dest")
    await hub.client(a).upload(_envelopes(hub, a, b, 14))
    url = str(hub.http.make_url("/")).rstrip("/")
    async with NodeHubClient(
        url, keys=a.keys, node_id=a.node_id, request_timeout=10, deps=clocked(hub.clock)
    ) as client:
        with pytest.raises(HubUnreachable, match="429"):
            await client.upload(_envelopes(hub, a, b, 4))


def test_quota_below_the_body_limit_is_refused(tmp_path: Path) -> None:
    """A quota smaller than one request body could never be met, so the config is refused."""
    with pytest.raises(ConfigError, match="max_queue_bytes_per_node"):
        RelaySettings(max_body=1 << 20, max_queue_bytes_per_node=1 << 19)


def _usage_matches_queue(hub: Hub) -> dict[str, int]:
    """`queue_usage` against the queue's bytes per sender (senders at 0 left out)."""
    with hub_db(hub.settings) as conn:
        queued = {
            str(s): int(n)
            for s, n in conn.execute(
                "SELECT sender, sum(length(envelope)) FROM queue GROUP BY sender"
            ).fetchall()
        }
        counted = {
            str(s): int(n) for s, n in conn.execute("SELECT sender, bytes FROM queue_usage") if n
        }
    assert counted == queued
    return counted


async def test_the_count_follows_uploads_refusals_notices_and_acks(small_hub: Hub) -> None:
    """The per-sender count is added to once per upload and once per expiry notice
    (no insert trigger since migration 0011) and taken off by the delete trigger:
    it matches the queue after every step, the hub's own notices included."""
    hub = small_hub
    a, b = await hub.node("Counted Sender"), await hub.node("Counted Recipient")
    now = hub.clock.now()
    short = referral(a, b.node_id, b.keys.public, now=now, note=NOTE, ttl=3600)
    batch = [short.encode(), *_envelopes(hub, a, b, 12)]
    await hub.client(a).upload(batch)
    first = _usage_matches_queue(hub)
    assert set(first) == {a.node_id}
    over = await hub.client(a).signed(
        "POST", "/v1/messages", pack({"envelopes": _envelopes(hub, a, b, 4)})
    )
    assert over.status == 429
    assert len((await hub.client(a).upload(batch))["accepted"]) == 13  # a retry adds nothing
    assert _usage_matches_queue(hub) == first
    hub.clock.advance(3600)
    assert await run_once(hub.app, hub.clock.now()) == {a.node_id}
    after_expiry = _usage_matches_queue(hub)
    assert set(after_expiry) == {a.node_id, HUB_ID}
    assert after_expiry[a.node_id] == first[a.node_id] - len(batch[0])
    for node in (a, b):
        page = await hub.client(node).fetch()
        await hub.client(node).ack([m["id"] for m in page["messages"]])
    assert _usage_matches_queue(hub) == {}
