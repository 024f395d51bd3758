"""POST/GET /v1/audit/head: the newest signed audit chain head per site (issue 9, item 4)."""

from __future__ import annotations

import hashlib

from protocol.documents import AuditHead
from protocol.keys import PrivateKeys
from tests.hub.client import problem_kind
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db


def _hash(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


async def test_a_head_is_kept_and_given_back(hub: Hub) -> None:
    node = await hub.node("Caritas Köln")
    client = hub.client(node)
    resp = await client.signed("GET", "/v1/audit/head")
    assert resp.status == 404
    doc = AuditHead(node.node_id, _hash("one"), hub.clock.now()).sign(node.keys)
    resp = await client.signed("POST", "/v1/audit/head", doc)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"at": hub.clock.now(), "stored": True}
    resp = await client.signed("GET", "/v1/audit/head")
    assert resp.status == 200
    assert await resp.read() == doc
    head = AuditHead.verify(await resp.read(), (node.keys.public,))
    assert head.hash == _hash("one")
    # A newer head replaces it; the hub keeps one row per site, nothing else.
    hub.clock.advance(600)
    newer = AuditHead(node.node_id, _hash("two"), hub.clock.now()).sign(node.keys)
    assert (await client.signed("POST", "/v1/audit/head", newer)).status == 200
    assert await (await client.signed("GET", "/v1/audit/head")).read() == newer
    conn = hub_db(hub.settings)
    try:
        stored = conn.execute("SELECT node_id, at, hash FROM audit_heads").fetchall()
    finally:
        conn.close()
    assert stored == [(node.node_id, hub.clock.now(), _hash("two"))]


async def test_an_older_head_is_refused(hub: Hub) -> None:
    node = await hub.node("Caritas Köln")
    client = hub.client(node)
    now = hub.clock.now()
    new = AuditHead(node.node_id, _hash("new"), now).sign(node.keys)
    old = AuditHead(node.node_id, _hash("old"), now - 600).sign(node.keys)
    assert (await client.signed("POST", "/v1/audit/head", new)).status == 200
    resp = await client.signed("POST", "/v1/audit/head", old)
    assert resp.status == 409
    assert problem_kind(await resp.json()) == "conflict"
    assert await (await client.signed("GET", "/v1/audit/head")).read() == new


async def test_a_bad_signature_is_refused(hub: Hub) -> None:
    node = await hub.node("Caritas Köln")
    client = hub.client(node)
    forged = AuditHead(node.node_id, _hash("x"), hub.clock.now()).sign(PrivateKeys.generate())
    resp = await client.signed("POST", "/v1/audit/head", forged)
    assert resp.status == 400
    assert problem_kind(await resp.json()) == "bad-signature"
    tampered = bytearray(AuditHead(node.node_id, _hash("x"), hub.clock.now()).sign(node.keys))
    tampered[-1] ^= 1
    resp = await client.signed("POST", "/v1/audit/head", bytes(tampered))
    assert resp.status == 400
    assert (await client.signed("GET", "/v1/audit/head")).status == 404


async def test_a_head_for_another_node_or_from_the_future_is_refused(hub: Hub) -> None:
    node = await hub.node("Caritas Köln")
    other = await hub.node("AWO Bonn")
    client = hub.client(node)
    theirs = AuditHead(other.node_id, _hash("x"), hub.clock.now()).sign(node.keys)
    resp = await client.signed("POST", "/v1/audit/head", theirs)
    assert resp.status == 403
    future = AuditHead(node.node_id, _hash("x"), hub.clock.now() + 3600).sign(node.keys)
    resp = await client.signed("POST", "/v1/audit/head", future)
    assert resp.status == 400
    assert problem_kind(await resp.json()) == "clock-skew"
    # Only the node itself gets its head back.
    ok = AuditHead(node.node_id, _hash("mine"), hub.clock.now()).sign(node.keys)
    assert (await client.signed("POST", "/v1/audit/head", ok)).status == 200
    assert (await hub.client(other).signed("GET", "/v1/audit/head")).status == 404


async def test_an_unsigned_request_is_refused(hub: Hub) -> None:
    resp = await hub.http.get("/v1/audit/head")
    assert resp.status == 401
    resp = await hub.http.post("/v1/audit/head", data=b"x")
    assert resp.status == 401
