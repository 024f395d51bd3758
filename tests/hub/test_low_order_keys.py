"""Keys of small order never enter the hub: enrollment and rotation refuse them."""

from __future__ import annotations

from nacl.signing import SigningKey

from hub.maintenance import run_once
from hub.storage.sites import get_site
from protocol.documents import Directory, sign_document
from protocol.encoding import pack
from protocol.enrollment import _PROOF_DOMAIN, EnrollmentCode
from protocol.keys import PrivateKeys
from tests.hub.client import enroll, problem_kind
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db

LOW_ORDER = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")


def low_order_request(code_text: str, keys: PrivateKeys) -> bytes:
    """A correctly signed enrollment request whose encryption key has small order."""
    code = EnrollmentCode.parse(code_text)
    sign = keys.public.sign
    stmt = _PROOF_DOMAIN + code.lookup_id().encode() + sign + LOW_ORDER
    return pack(
        {
            "lookup": code.lookup_id(),
            "keys": {"sign": sign, "enc": LOW_ORDER},
            "code_sig": bytes(SigningKey(code._seed()).sign(stmt).signature),
            "node_sig": keys.sign(stmt),
        }
    )


async def test_enrollment_with_a_low_order_key_is_refused_and_code_stays_unused(hub: Hub) -> None:
    """A low-order encryption key gets 400 malformed; the code still enrolls proper keys."""
    new = hub.add_site("Low Order Office")
    resp = await hub.http.post(
        "/v1/enroll", data=low_order_request(new.code, PrivateKeys.generate())
    )
    assert resp.status == 400
    assert problem_kind(await resp.json()) == "malformed"
    node = await enroll(hub.http, new.code)
    assert node.node_id == new.node_id


async def test_rotation_to_a_low_order_key_is_refused(hub: Hub) -> None:
    """A rotation document naming a low-order key gets 400 malformed; the keys stay."""
    node = await hub.node("Rotating Office")
    now = hub.clock.now()
    body = {
        "node": node.node_id,
        "keys": {"sign": PrivateKeys.generate().public.sign, "enc": LOW_ORDER},
        "created": now,
    }
    doc = sign_document("key-rotation", body, node.keys)
    resp = await hub.client(node).signed("POST", "/v1/keys/rotate", doc)
    assert resp.status == 400
    assert problem_kind(await resp.json()) == "malformed"
    db = hub_db(hub.settings)
    try:
        site = get_site(db, node.node_id)
    finally:
        db.close()
    assert site is not None
    assert site.keys == node.keys.public


async def test_a_stored_low_order_key_leaves_the_office_out(hub: Hub) -> None:
    """A site stored with such a key by an older hub is left out of the directory."""
    bad = await hub.node("Legacy Office")
    good = await hub.node("Good Office")
    with hub_db(hub.settings) as conn:
        conn.execute("UPDATE sites SET enc_key = ? WHERE node_id = ?", (bytes(32), bad.node_id))
    refused = await hub.client(bad).signed("GET", "/v1/directory")
    assert refused.status == 401
    hub.clock.advance(6 * 24 * 3600)  # due for re-signing by the maintenance pass
    await run_once(hub.app, hub.clock.now())
    resp = await hub.client(good).signed("GET", "/v1/directory")
    directory = Directory.verify(await resp.read(), good.hub_keys, now=hub.clock.now())
    assert directory.office(good.node_id) is not None
    assert directory.office(bad.node_id) is None
