"""POST /v1/keys/rotate on the in-process hub, with an injected clock."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from hub import maintenance
from hub.storage.db import connect
from hub.storage.sites import get_site
from protocol.documents import Directory, KeyRotation, NodeCertificate
from protocol.encoding import unpack
from protocol.keys import PrivateKeys
from tests.hub.client import HubClient, Node, problem_kind, referral
from tests.hub.conftest import Hub

OVERLAP = 3600


def rotation(node: Node, new: PrivateKeys, now: int, signer: PrivateKeys | None = None) -> bytes:
    doc = KeyRotation(node_id=node.node_id, new_keys=new.public, created=now)
    return doc.sign(signer or node.keys)


async def post_rotation(
    client: HubClient, body: bytes, keys: PrivateKeys | None = None
) -> tuple[int, Any]:
    resp = await client.signed("POST", "/v1/keys/rotate", body, keys=keys)
    if resp.status == 200:
        return 200, unpack(await resp.read())
    return resp.status, problem_kind(await resp.json())


async def directory(hub: Hub, node: Node) -> Directory:
    resp = await hub.client(node).signed("GET", "/v1/directory")
    assert resp.status == 200
    return Directory.verify(await resp.read(), node.hub_keys, now=hub.clock.now())


async def test_good_rotation_issues_cert_and_publishes_directory(hub: Hub) -> None:
    """A rotation signed by the current key yields a certificate and a directory with both keys."""
    a = await hub.node("Caritas Köln")
    before = (await directory(hub, a)).version
    new = PrivateKeys.generate()
    now = hub.clock.now()
    status, answer = await post_rotation(hub.client(a), rotation(a, new, now))
    assert status == 200
    cert = NodeCertificate.verify(answer["cert"], a.hub_keys, now=now)
    assert cert.node_id == a.node_id
    assert cert.keys == new.public
    assert answer["previous_until"] == now + OVERLAP
    listed = await directory(hub, a)
    assert listed.version == answer["directory_version"] > before
    entry = listed.office(a.node_id)
    assert entry is not None
    assert entry.keys == new.public
    assert entry.previous_keys == a.keys.public
    assert entry.previous_until == now + OVERLAP
    assert entry.keys_valid_at(now) == (new.public, a.keys.public)


async def test_old_key_accepted_during_overlap_refused_after(hub: Hub) -> None:
    """Requests signed with the old key work during the overlap and fail after it."""
    a = await hub.node("Caritas Köln")
    new = PrivateKeys.generate()
    status, _ = await post_rotation(hub.client(a), rotation(a, new, hub.clock.now()))
    assert status == 200
    old_client, new_client = hub.client(a), hub.client(replace(a, keys=new))
    assert (await old_client.signed("GET", "/v1/directory")).status == 200
    assert (await new_client.signed("GET", "/v1/directory")).status == 200
    hub.clock.advance(OVERLAP + 1)
    refused = await old_client.signed("GET", "/v1/directory")
    assert refused.status == 401
    assert problem_kind(await refused.json()) == "bad-signature"
    assert (await new_client.signed("GET", "/v1/directory")).status == 200


async def test_maintenance_drops_previous_keys_after_overlap(hub: Hub) -> None:
    """After the overlap the hub forgets the old keys and publishes a directory without them."""
    a = await hub.node("Caritas Köln")
    new = PrivateKeys.generate()
    status, answer = await post_rotation(hub.client(a), rotation(a, new, hub.clock.now()))
    assert status == 200
    hub.clock.advance(OVERLAP + 1)
    await maintenance.run_once(hub.app, hub.clock.now())
    listed = await directory(hub, replace(a, keys=new))
    assert listed.version > answer["directory_version"]
    entry = listed.office(a.node_id)
    assert entry is not None
    assert entry.previous_keys is None
    assert entry.keys == new.public


async def test_wrong_signer_refused(hub: Hub) -> None:
    """A rotation document not signed by the node's current key is refused, nothing changes."""
    a = await hub.node("Caritas Köln")
    new = PrivateKeys.generate()
    body = rotation(a, new, hub.clock.now(), signer=new)
    assert await post_rotation(hub.client(a), body) == (401, "bad-signature")
    db = connect(hub.settings.db_path)
    site = get_site(db, a.node_id)
    db.close()
    assert site is not None
    assert site.keys == a.keys.public
    assert site.previous_keys is None


async def test_rotation_for_another_node_refused(hub: Hub) -> None:
    """A node cannot rotate another office's keys, even with a document it signed itself."""
    a = await hub.node("Caritas Köln")
    b = await hub.node("AWO Bonn")
    doc = KeyRotation(node_id=b.node_id, new_keys=PrivateKeys.generate().public, created=0)
    body = replace(doc, created=hub.clock.now()).sign(a.keys)
    assert await post_rotation(hub.client(a), body) == (403, "forbidden")


async def test_request_by_other_node_with_its_document_refused(hub: Hub) -> None:
    """Office B replaying A's rotation document under its own signature is refused."""
    a = await hub.node("Caritas Köln")
    b = await hub.node("AWO Bonn")
    body = rotation(a, PrivateKeys.generate(), hub.clock.now())
    assert await post_rotation(hub.client(b), body) == (401, "bad-signature")


async def test_second_rotation_during_overlap_refused_retry_answered(hub: Hub) -> None:
    """During the overlap a new rotation is refused, while a retry of the same one is answered."""
    a = await hub.node("Caritas Köln")
    new = PrivateKeys.generate()
    status, first = await post_rotation(hub.client(a), rotation(a, new, hub.clock.now()))
    assert status == 200
    hub.clock.advance(60)
    retry = rotation(a, new, hub.clock.now())
    status, again = await post_rotation(hub.client(a), retry)
    assert status == 200
    assert again["cert"] == first["cert"]
    assert again["previous_until"] == first["previous_until"]
    newer = rotation(replace(a, keys=new), PrivateKeys.generate(), hub.clock.now())
    refused = await post_rotation(hub.client(replace(a, keys=new)), newer)
    assert refused == (409, "rotation-in-progress")
    hub.clock.advance(OVERLAP)
    # `created` of the refused document is now outside the skew window: a fresh one is needed.
    assert await post_rotation(hub.client(replace(a, keys=new)), newer) == (400, "clock-skew")
    fresh = rotation(replace(a, keys=new), PrivateKeys.generate(), hub.clock.now())
    status, _ = await post_rotation(hub.client(replace(a, keys=new)), fresh)
    assert status == 200


async def test_reused_keys_and_stale_document_refused(hub: Hub) -> None:
    """New keys equal to the current ones, or a document from long ago, are refused."""
    a = await hub.node("Caritas Köln")
    same = rotation(a, a.keys, hub.clock.now())
    assert await post_rotation(hub.client(a), same) == (400, "key-reuse")
    stale = rotation(a, PrivateKeys.generate(), hub.clock.now() - 3600)
    assert await post_rotation(hub.client(a), stale) == (400, "clock-skew")
    assert await post_rotation(hub.client(a), b"\x81\xa1x\x01") == (400, "malformed")


async def test_mail_signed_with_old_key_relayed_during_overlap(hub: Hub) -> None:
    """An envelope uploaded with the old key during the overlap is accepted and delivered."""
    a = await hub.node("Caritas Köln")
    b = await hub.node("AWO Bonn")
    new = PrivateKeys.generate()
    status, _ = await post_rotation(hub.client(a), rotation(a, new, hub.clock.now()))
    assert status == 200
    env = referral(a, b.node_id, b.keys.public, now=hub.clock.now(), msg_id=os.urandom(16).hex())
    result = await hub.client(a).upload([env.encode()])
    assert result["accepted"] == [env.msg_id]
    page = await hub.client(b).fetch()
    assert [m["id"] for m in page["messages"]] == [env.msg_id]
