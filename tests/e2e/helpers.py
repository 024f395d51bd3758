"""What the end-to-end tests do as a counselling app, and as an attacker with A's key file."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from demo.cluster import ApiError, Node
from protocol.encoding import pack
from protocol.envelope import Envelope, InnerMessage, seal
from protocol.keys import PrivateKeys
from protocol.payloads import Consent, ReferralOffer
from protocol.requests import sign_request

DAY = 24 * 3600


def open_case(node: Node, **fields: Any) -> dict[str, Any]:
    body = {"case_type": "case_management", "pseudonym": "P-" + os.urandom(3).hex()} | fields
    case: dict[str, Any] = node.api.post("/api/v1/cases", body)
    return case


def record_consent(node: Node, case_id: str, recipient: str, fields: list[str]) -> dict[str, Any]:
    consent: dict[str, Any] = node.api.post(
        f"/api/v1/cases/{case_id}/consents",
        {
            "purpose": "Weiterleitung zur Beratung",
            "recipient": recipient,
            "fields": fields,
            "form": "written",
            "legal_regime": "gdpr",
        },
    )
    return consent


def refer(node: Node, case_id: str, recipient: str, fields: list[str], **kw: Any) -> dict[str, Any]:
    body = {"case_id": case_id, "recipient": recipient, "target_type": "mbe", "fields": fields}
    ref: dict[str, Any] = node.api.post("/api/v1/referrals/outgoing", body | kw)
    return ref


def consented_referral(sender: Node, recipient: Node, **case_fields: Any) -> dict[str, Any]:
    """Open a case, record consent for exactly its client fields, refer it."""
    case = open_case(sender, **case_fields)
    fields = sorted(case_fields)
    record_consent(sender, case["id"], recipient.node_id, fields)
    return refer(sender, case["id"], recipient.node_id, fields)


def outgoing(node: Node, ref_id: str) -> dict[str, Any]:
    ref: dict[str, Any] = node.api.get(f"/api/v1/referrals/outgoing/{ref_id}")
    return ref


def incoming(node: Node, ref_id: str) -> dict[str, Any] | None:
    """The received referral, or None while (or once) the node has no such referral."""
    try:
        ref: dict[str, Any] = node.api.get(f"/api/v1/referrals/incoming/{ref_id}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return ref


def incoming_ids(node: Node) -> list[str]:
    return [r["id"] for r in node.api.get("/api/v1/referrals/incoming")["referrals"]]


def in_state(node: Node, ref_id: str, state: str, *, out: bool = True) -> dict[str, Any] | None:
    """The referral if it is in `state` now (a `wait_for` check)."""
    ref = outgoing(node, ref_id) if out else incoming(node, ref_id)
    return ref if ref is not None and ref["state"] == state else None


def states(ref: dict[str, Any]) -> list[str]:
    return [event["state"] for event in ref["history"]]


def status(node: Node) -> dict[str, Any]:
    st: dict[str, Any] = node.api.get("/api/v1/status")
    return st


def node_keys(node: Node) -> PrivateKeys:
    """The node's private keys from its data directory (what an attacker on its server has)."""
    return PrivateKeys.from_bytes((node.service.data_dir / "node.key").read_bytes())


def sealed_offer(
    sender: Node, recipient: Node, client: dict[str, Any], *, tamper: bool = False
) -> Envelope:
    """A referral offer from `sender` to `recipient`, sealed with the sender's real key."""
    now = int(time.time())
    consent = Consent(
        consent_id=os.urandom(16).hex(),
        given=time.strftime("%Y-%m-%d", time.gmtime(now)),
        form="written",
        legal_regime="gdpr",
        fields=tuple(sorted(client)),
    )
    inner = InnerMessage(
        msg_id=os.urandom(16).hex(),
        sender=sender.node_id,
        recipient=recipient.node_id,
        created=now,
        expires=now + 7 * DAY,
        payload=ReferralOffer(
            referral_id=os.urandom(16).hex(), target_type="mbe", consent=consent, client=client
        ),
    )
    env = seal(
        inner, node_keys(sender), node_keys(recipient).public, ephemeral_secret=os.urandom(32)
    )
    if not tamper:
        return env
    ct = bytearray(env.ciphertext)
    ct[len(ct) // 2] ^= 0x01  # one bit in the middle of the sealed box
    return Envelope(env.msg_id, env.sender, env.recipient, env.expires, bytes(ct))


def upload_as(hub_url: str, node: Node, envelopes: list[bytes]) -> dict[str, Any]:
    """POST /v1/messages signed with the node's key, as its sync worker would."""
    body = pack({"envelopes": envelopes})
    headers = sign_request(
        "POST",
        "/v1/messages",
        body,
        node_id=node.node_id,
        keys=node_keys(node),
        timestamp=int(time.time()),
        nonce=os.urandom(16).hex(),
    )
    req = urllib.request.Request(hub_url + "/v1/messages", data=body, method="POST")  # noqa: S310 (loopback)
    for name, value in headers.items():
        req.add_header(name, value)
    req.add_header("Content-Type", "application/msgpack")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 (loopback)
            answer: dict[str, Any] = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"hub refused the upload: {exc.code} {exc.read()[:300]!r}") from None
    return answer


def hub_metric(hub_url: str, name: str) -> float:
    with urllib.request.urlopen(hub_url + "/metrics", timeout=10) as r:  # noqa: S310 (loopback)
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"hub /metrics has no {name}")
