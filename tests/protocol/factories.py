"""Fixed keys and sample protocol objects shared by the protocol tests and the vectors.

Everything here is deterministic: keys come from named seeds, ids from counters,
so the known-answer vectors built from these objects never change by accident.
Tests that need randomness use hypothesis strategies (strategies.py) instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from nacl.public import PublicKey, SealedBox

from protocol.documents import Directory, KeyRotation, NodeCertificate, OfficeEntry
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import BUCKETS, Envelope, InnerMessage
from protocol.keys import PrivateKeys
from protocol.payloads import (
    Consent,
    ExpiryNotice,
    Payload,
    Receipt,
    ReferralOffer,
    ReferralReply,
    ReferralStatus,
    ReferralWithdraw,
    StatsCell,
    StatsReport,
)

ENROLLMENT_SECRET = 0x0123_4567_89AB_CDEF & ((1 << 60) - 1)
NOW = 1_800_000_000  # 2027-01-15, a fixed "now" for every test
DAY = 86_400


def seed(label: str) -> bytes:
    """32 bytes derived from a label: the fixed seeds of the vectors."""
    return hashlib.sha256(b"mbe-sync test seed/" + label.encode()).digest()


def keys(name: str) -> PrivateKeys:
    """The fixed key pair of a named party (hub, office-a, office-b, office-c...)."""
    return PrivateKeys(sign_seed=seed(name + "/sign"), encrypt_secret=seed(name + "/enc"))


def hex_id(label: str) -> str:
    """A fixed 32-hex-character id (message, referral, consent, nonce)."""
    return seed("id/" + label)[:16].hex()


def consent(fields: tuple[str, ...] = ("given_name", "family_name", "phone", "topics")) -> Consent:
    return Consent(
        consent_id=hex_id("consent"),
        given="2027-01-10",
        form="written",
        legal_regime="gdpr",
        fields=fields,
    )


def referral_offer() -> ReferralOffer:
    return ReferralOffer(
        referral_id=hex_id("referral"),
        target_type="jobcenter",
        consent=consent(),
        client={
            "given_name": "Amina",
            "family_name": "Beispiel",
            "phone": "+49 30 1234567",
            "topics": ["work_recognition", "language_course"],
        },
    )


def stats_report() -> StatsReport:
    """A report of dataset version 2, as a node not yet upgraded still sends it: the
    hub takes it, and tests/vectors/envelope.json pins it (stats_report_v3 is current)."""
    return StatsReport(
        period="2026-Q4",
        revision=1,
        generated=NOW,
        cells=(
            StatsCell("cases_new", {}, 12, 3_141_592_653),
            StatsCell("cases_closed", {"closure": "moved", "gender": "female"}, 4, 0),
            StatsCell(
                "contacts", {"channel": "phone", "age_band": "27_39", "topic": "debt"}, 7, 2**32 - 1
            ),
        ),
        version=2,
    )


def stats_report_v3() -> StatsReport:
    """A report of dataset version 3 with a cell of each measure it added."""
    return StatsReport(
        period="2026-Q4",
        revision=2,
        generated=NOW,
        cells=(
            StatsCell("cases_new", {}, 12, 3_141_592_653),
            StatsCell("referrals_declined", {"target": "jobcenter", "gender": "female"}, 3, 17),
            StatsCell("referrals_declined_reason", {"decline_reason": "no_capacity"}, 5, 2**31),
            StatsCell("referrals_answered", {"wait_band": "4_7_days", "age_band": "27_39"}, 8, 0),
            StatsCell("referrals_unanswered", {"wait_band": "over_14_days"}, 2, 2**32 - 1),
        ),
        version=3,
    )


def sample_payloads() -> dict[str, Payload]:
    """One valid instance of every payload type, keyed by message type."""
    ref = hex_id("referral")
    payloads: list[Payload] = [
        referral_offer(),
        ReferralReply(referral_id=ref, decision="declined", reason="no_capacity", note="voll"),
        ReferralStatus(referral_id=ref, outcome="first_appointment", date="2027-01-20"),
        ReferralWithdraw(referral_id=ref, reason="consent_withdrawn"),
        Receipt(of_msg_id=hex_id("msg-1"), received=NOW),
        stats_report(),
        ExpiryNotice(of_msg_id=hex_id("msg-1"), recipient="office-b", expired=NOW),
    ]
    return {p.TYPE: p for p in payloads}


def inner(
    payload: Payload | None = None,
    *,
    sender: str = "office-a",
    recipient: str = "office-b",
    msg_id: str | None = None,
    created: int = NOW,
    expires: int = NOW + 14 * DAY,
    version: int = 1,
) -> InnerMessage:
    return InnerMessage(
        msg_id=msg_id or hex_id("msg-1"),
        sender=sender,
        recipient=recipient,
        created=created,
        expires=expires,
        payload=payload if payload is not None else referral_offer(),
        version=version,
    )


def pad(data: bytes) -> bytes:
    """The padding of docs/protocol.md, written independently of protocol.envelope."""
    framed = len(data).to_bytes(4, "big") + data
    bucket = next(b for b in BUCKETS if b >= len(framed))
    return framed + bytes(bucket - len(framed))


def seal_raw(
    plaintext: bytes, recipient_enc: bytes, *, msg_id: str, sender: str, recipient: str, exp: int
) -> Envelope:
    """An envelope around arbitrary plaintext, built with PyNaCl's own SealedBox."""
    ct = bytes(SealedBox(PublicKey(recipient_enc)).encrypt(plaintext))
    return Envelope(msg_id=msg_id, sender=sender, recipient=recipient, expires=exp, ciphertext=ct)


def office(name: str, **changes: Any) -> OfficeEntry:
    """A directory entry for `name`; keyword arguments replace single fields."""
    base = OfficeEntry(
        node_id=name,
        name=f"Beratungsstelle {name}",
        org="Caritas",
        services=("mbe",),
        languages=("de", "ar"),
        area="Leipzig",
        keys=keys(name).public,
    )
    return dataclasses.replace(base, **changes)


def directory(version: int = 3, expires: int = NOW + 7 * DAY) -> Directory:
    return Directory(
        version=version,
        issued=NOW - DAY,
        expires=expires,
        region="Sachsen",
        offices=(
            office("office-a"),
            office(
                "office-b",
                services=("mbe", "debt_counselling"),
                previous_keys=keys("office-b-old").public,
                previous_until=NOW + DAY,
            ),
            office("office-c", status="revoked"),
        ),
    )


def certificate(expires: int = NOW + 365 * DAY) -> NodeCertificate:
    return NodeCertificate(
        node_id="office-a",
        name="Beratungsstelle office-a",
        org="Caritas",
        keys=keys("office-a").public,
        issued=NOW - DAY,
        expires=expires,
    )


def rotation() -> KeyRotation:
    return KeyRotation(node_id="office-a", new_keys=keys("office-a-new").public, created=NOW)


def enrollment_code() -> EnrollmentCode:
    return EnrollmentCode.create(keys("hub").public, ENROLLMENT_SECRET)


def enrollment_request() -> EnrollmentRequest:
    return EnrollmentRequest.create(enrollment_code(), keys("office-a"))
