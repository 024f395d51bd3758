"""WebSocket mail notices, /health, /metrics, /v1/info and unknown routes."""

from __future__ import annotations

import asyncio
import base64

from tests.hub.client import problem_kind, referral
from tests.hub.conftest import Hub


async def test_websocket_gets_a_mail_notice(hub: Hub) -> None:
    """A connected node is told {"type": "mail"} when mail for it is stored."""
    a, b = await hub.node("Push Sender"), await hub.node("Push Receiver")
    ws = await hub.client(b).ws()
    try:
        # The first frame announces the directory version (an empty inbox has no mail frame).
        assert (await asyncio.wait_for(ws.receive_json(), timeout=5))["type"] == "directory"
        env = referral(a, b.node_id, b.keys.public, now=hub.clock.now())
        await hub.client(a).upload([env.encode()])
        msg = await asyncio.wait_for(ws.receive_json(), timeout=5)
        assert msg == {"type": "mail"}
    finally:
        await ws.close()


async def test_websocket_tells_on_connect_when_mail_waits(hub: Hub) -> None:
    """A node that connects with a non-empty inbox is told at once."""
    a, b = await hub.node("Early Sender"), await hub.node("Late Receiver")
    await hub.client(a).upload(
        [referral(a, b.node_id, b.keys.public, now=hub.clock.now()).encode()]
    )
    ws = await hub.client(b).ws()
    try:
        assert await asyncio.wait_for(ws.receive_json(), timeout=5) == {"type": "mail"}
    finally:
        await ws.close()


async def test_websocket_upgrade_needs_a_signature(hub: Hub) -> None:
    """An unsigned upgrade request is refused before the WebSocket opens."""
    resp = await hub.http.get("/v1/ws")
    assert resp.status == 401


async def test_health_metrics_and_info(hub: Hub) -> None:
    """Health answers ok; metrics show queue depth, connections and request counts."""
    a, b = await hub.node("Metrics A"), await hub.node("Metrics B")
    await hub.client(a).upload(
        [referral(a, b.node_id, b.keys.public, now=hub.clock.now()).encode()]
    )
    hub.clock.advance(42)
    health = await hub.http.get("/health")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"
    ws = await hub.client(b).ws()
    try:
        text = await (await hub.http.get("/metrics")).text()
    finally:
        await ws.close()
    assert "mbe_hub_queue_depth 1\n" in text
    assert "mbe_hub_oldest_message_age_seconds 42\n" in text
    assert "mbe_hub_connected_nodes 1\n" in text
    assert 'mbe_hub_requests_total{route="/v1/messages",method="POST",status="200"} 1' in text
    info = await (await hub.http.get("/v1/info")).json()
    assert info["region"] == "Testregion"
    assert info["versions"] == [1]
    assert base64.b64decode(info["hub_keys"]["sign"]) == a.hub_keys.sign
    assert info["fingerprint"] == a.hub_keys.fingerprint()


async def test_unknown_route_is_a_problem(hub: Hub) -> None:
    """Unknown paths and methods answer problem+json too."""
    resp = await hub.http.get("/v1/nothing")
    assert resp.status == 404
    assert problem_kind(await resp.json()) == "not-found"
    resp = await hub.http.delete("/v1/info")
    assert resp.status == 405
