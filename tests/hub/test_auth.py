"""Each kind of authentication refusal has its own problem type."""

from __future__ import annotations

from hub.keyfile import read_keys
from hub.sites import revoke_site
from protocol.keys import PrivateKeys
from tests.clocks import clocked
from tests.hub.client import problem_kind
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db


async def _kind(resp: object) -> tuple[int, str]:
    status = resp.status  # type: ignore[attr-defined]  # an aiohttp ClientResponse
    assert resp.content_type == "application/problem+json"  # type: ignore[attr-defined]
    return status, problem_kind(await resp.json())  # type: ignore[attr-defined]


async def test_signed_request_is_accepted(hub: Hub) -> None:
    """A correctly signed request passes (the baseline for the refusals below)."""
    node = await hub.node("Baseline")
    resp = await hub.client(node).signed("GET", "/v1/inbox")
    assert resp.status == 200


async def test_bad_signature(hub: Hub) -> None:
    """A request signed with another key, or altered after signing, is bad-signature."""
    node = await hub.node("Sig Test")
    c = hub.client(node)
    resp = await c.signed("GET", "/v1/inbox", keys=PrivateKeys.generate())
    assert await _kind(resp) == (401, "bad-signature")
    headers = c.headers("GET", "/v1/inbox?after=0")
    resp = await hub.http.get("/v1/inbox?after=5", headers=headers)
    assert await _kind(resp) == (401, "bad-signature")


async def test_clock_skew(hub: Hub) -> None:
    """A timestamp outside the skew bound is clock-skew, either direction."""
    node = await hub.node("Skew Test")
    c = hub.client(node)
    for delta in (-301, 301):
        resp = await c.signed("GET", "/v1/inbox", timestamp=hub.clock.now() + delta)
        assert await _kind(resp) == (401, "clock-skew")
    resp = await c.signed("GET", "/v1/inbox", timestamp=hub.clock.now() - 299)
    assert resp.status == 200


async def test_replayed_nonce(hub: Hub) -> None:
    """The same signed request sent twice is refused the second time as replayed-nonce."""
    node = await hub.node("Replay Test")
    headers = hub.client(node).headers("GET", "/v1/inbox")
    first = await hub.http.get("/v1/inbox", headers=headers)
    assert first.status == 200
    second = await hub.http.get("/v1/inbox", headers=headers)
    assert await _kind(second) == (401, "replayed-nonce")


async def test_unknown_node(hub: Hub) -> None:
    """A node id the hub never enrolled (or one still pending) is unknown-node."""
    node = await hub.node("Known")
    resp = await hub.client(node).signed("GET", "/v1/inbox", node_id="nobody-here")
    assert await _kind(resp) == (401, "unknown-node")
    pending = hub.add_site("Pending Site")
    resp = await hub.client(node).signed("GET", "/v1/inbox", node_id=pending.node_id)
    assert await _kind(resp) == (401, "unknown-node")


async def test_revoked_node(hub: Hub) -> None:
    """Revocation (from another process, like the CLI) takes effect on the next request."""
    node = await hub.node("To Be Revoked")
    c = hub.client(node)
    assert (await c.signed("GET", "/v1/inbox")).status == 200
    db = hub_db(hub.settings)
    revoke_site(db, read_keys(hub.settings.key_path), hub.settings, node.node_id, 1)
    db.close()
    assert await _kind(await c.signed("GET", "/v1/inbox")) == (403, "revoked-node")


async def test_missing_headers_are_malformed(hub: Hub) -> None:
    """A request without signature headers is refused as malformed."""
    assert await _kind(await hub.http.get("/v1/inbox")) == (401, "malformed")


async def test_nonces_survive_a_restart(hub: Hub) -> None:
    """Seen nonces are in the database, so a new app instance still refuses a replay."""
    from hub.app import create_app

    node = await hub.node("Restart Replay")
    headers = hub.client(node).headers("GET", "/v1/inbox")
    assert (await hub.http.get("/v1/inbox", headers=headers)).status == 200
    await hub.http.close()
    from aiohttp.test_utils import TestClient, TestServer

    app = create_app(hub.settings, deps=clocked(hub.clock))
    async with TestClient(TestServer(app)) as http:
        resp = await http.get("/v1/inbox", headers=headers)
        assert await _kind(resp) == (401, "replayed-nonce")
