"""Which fetched envelopes may reach the domain (open_incoming, decode_envelope)."""

from __future__ import annotations

import time

import pytest

from node.sync.inbox import IncomingRefused, UnknownSender, decode_envelope, open_incoming
from protocol.documents import Directory, OfficeEntry
from protocol.envelope import Envelope
from protocol.keys import PrivateKeys
from protocol.payloads import ExpiryNotice, Receipt
from tests.sync.fakehub import fixed_keys
from tests.sync.helpers import sealed

HUB = fixed_keys(1)
A, B = fixed_keys(10), fixed_keys(20)
NOW = int(time.time())


def directory(status: str = "active", previous: PrivateKeys | None = None) -> Directory:
    office = OfficeEntry(
        node_id="awo-fuerth",
        name="AWO",
        org="AWO",
        services=("mbe",),
        languages=("de",),
        area="Fürth",
        keys=A.public,
        status=status,
        previous_keys=previous.public if previous else None,
        previous_until=NOW + 3600 if previous else 0,
    )
    return Directory(version=1, issued=NOW, expires=NOW + 3600, region="MF", offices=(office,))


def open_(data: bytes, d: Directory | None) -> object:
    env = Envelope.decode(data)
    return open_incoming(
        # The clock now, not at import: `sealed` stamps `created` with the time of
        # the call, which under xdist can lie minutes after this module was imported.
        env,
        node_id="caritas-nuernberg",
        keys=B,
        hub_keys=HUB.public,
        directory=d,
        now=int(time.time()),
    )


def test_message_from_an_active_office_opens() -> None:
    """A receipt sealed by a listed, active office opens to its inner message."""
    msg_id, data = sealed("awo-fuerth", A, "caritas-nuernberg", B.public)
    inner = open_(data, directory())
    assert getattr(inner, "msg_id", None) == msg_id


def test_unknown_sender_is_refused_as_unknown() -> None:
    """A sender missing from the directory raises UnknownSender (so a refresh can help)."""
    _, data = sealed("awo-fuerth", A, "caritas-nuernberg", B.public)
    with pytest.raises(UnknownSender):
        open_(data, None)


def test_revoked_sender_is_refused() -> None:
    """A revoked office's messages are refused even with a valid signature."""
    _, data = sealed("awo-fuerth", A, "caritas-nuernberg", B.public)
    with pytest.raises(IncomingRefused) as info:
        open_(data, directory(status="revoked"))
    assert info.value.reason == "revoked-sender"


def test_tampered_ciphertext_is_refused() -> None:
    """Flipping one ciphertext byte makes the envelope fail authentication."""
    _, data = sealed("awo-fuerth", A, "caritas-nuernberg", B.public)
    env = Envelope.decode(data)
    ct = bytearray(env.ciphertext)
    ct[-1] ^= 1
    tampered = Envelope(env.msg_id, env.sender, env.recipient, env.expires, bytes(ct)).encode()
    with pytest.raises(IncomingRefused) as info:
        open_(tampered, directory())
    assert info.value.reason == "bad-signature"


def test_forged_signature_is_refused() -> None:
    """A message claiming to be from A but signed with another key is refused."""
    _, data = sealed("awo-fuerth", fixed_keys(99), "caritas-nuernberg", B.public)
    with pytest.raises(IncomingRefused) as info:
        open_(data, directory())
    assert info.value.reason == "bad-signature"


def test_previous_key_counts_during_rotation_overlap() -> None:
    """A message signed with A's previous key opens while the overlap lasts."""
    old = fixed_keys(11)
    _, data = sealed("awo-fuerth", old, "caritas-nuernberg", B.public)
    assert open_(data, directory(previous=old)) is not None


def test_expiry_notice_from_the_hub_opens_with_the_hub_key() -> None:
    """Sender `hub` is checked against the enrolled hub key, without the directory."""
    notice = ExpiryNotice(of_msg_id="cd" * 16, recipient="awo-fuerth", expired=NOW)
    _, data = sealed("hub", HUB, "caritas-nuernberg", B.public, payload=notice)
    assert open_(data, None) is not None


def test_the_hub_may_send_nothing_but_expiry_notices() -> None:
    """A receipt signed by the hub is refused: the hub only relays."""
    _, data = sealed("hub", HUB, "caritas-nuernberg", B.public)
    with pytest.raises(IncomingRefused) as info:
        open_(data, None)
    assert info.value.reason == "unexpected-type"


def test_offices_may_not_send_expiry_notices() -> None:
    """An office forging a relay.expired notice is refused."""
    notice = ExpiryNotice(of_msg_id="cd" * 16, recipient="awo-fuerth", expired=NOW)
    _, data = sealed("awo-fuerth", A, "caritas-nuernberg", B.public, payload=notice)
    with pytest.raises(IncomingRefused) as info:
        open_(data, directory())
    assert info.value.reason == "unexpected-type"


def test_expired_message_is_refused() -> None:
    """A message past its expiry is refused, not applied."""
    payload = Receipt(of_msg_id="ab" * 16, received=NOW - 7200)
    _, data = sealed(
        "awo-fuerth", A, "caritas-nuernberg", B.public, payload=payload, created=NOW - 7200
    )
    with pytest.raises(IncomingRefused) as info:
        open_(data, directory())
    assert info.value.reason == "expired"


def test_listing_id_must_match_the_envelope() -> None:
    """An envelope listed under another id is refused before any crypto."""
    _, data = sealed("awo-fuerth", A, "caritas-nuernberg", B.public)
    with pytest.raises(IncomingRefused) as info:
        decode_envelope(data, "ef" * 16)
    assert info.value.reason == "id-mismatch"


def test_garbage_is_refused_as_malformed() -> None:
    """Bytes that are no envelope are refused with the protocol's reason code."""
    with pytest.raises(IncomingRefused) as info:
        decode_envelope(b"\x00garbage", "ef" * 16)
    assert info.value.reason == "malformed"


def test_a_message_created_far_in_the_future_is_refused() -> None:
    """A `created` beyond what the hub lets any clock say is a forged or broken time."""
    _, ok = sealed("awo-fuerth", A, "caritas-nuernberg", B.public, created=NOW + 300)
    assert open_(ok, directory()) is not None
    _, data = sealed("awo-fuerth", A, "caritas-nuernberg", B.public, created=NOW + 3600, ttl=7200)
    with pytest.raises(IncomingRefused) as info:
        open_(data, directory())
    assert info.value.reason == "created-in-future"
