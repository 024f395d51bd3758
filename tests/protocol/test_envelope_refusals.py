"""Every way a sealed message is refused, each with the specific error the caller sees."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from nacl.public import SealedBox

from protocol.encoding import pack, unpack
from protocol.envelope import MAX_CIPHERTEXT, MAX_ENVELOPE, Envelope, open_envelope, seal
from protocol.errors import (
    BadSignatureError,
    ExpiredError,
    InvalidCodeError,
    MalformedError,
    TooLargeError,
    UnknownTypeError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from protocol.keys import PrivateKeys, PublicKeys
from protocol.payloads import Receipt, ReferralWithdraw
from tests.protocol import factories as f

ALICE = f.keys("office-a")
BOB = f.keys("office-b")
CAROL = f.keys("office-c")
EPH = f.seed("ephemeral/refusals")


def sealed(**inner_changes: Any) -> Envelope:
    return seal(f.inner(**inner_changes), ALICE, BOB.public, ephemeral_secret=EPH)


def open_as_bob(env: Envelope, now: int = f.NOW) -> object:
    return open_envelope(Envelope.decode(env.encode()), BOB, "office-b", ALICE.public, now=now)


def inner_body(env: Envelope, keys: PrivateKeys = BOB) -> dict[str, Any]:
    """What the recipient decrypts: the signed inner map (padding removed)."""
    padded = SealedBox(keys.private_key).decrypt(env.ciphertext)
    body: dict[str, Any] = unpack(padded[4 : 4 + int.from_bytes(padded[:4], "big")])
    return body


def reseal(body: dict[str, Any], to: PublicKeys, **envelope: Any) -> Envelope:
    fields = {
        "msg_id": body["id"],
        "sender": "office-a",
        "recipient": "office-b",
        "exp": body["exp"],
    }
    fields.update(envelope)
    return f.seal_raw(f.pad(pack(body)), to.encrypt, **fields)


def test_a_sealed_message_opens_for_its_recipient() -> None:
    """The baseline the refusals below depart from: the right recipient opens it."""
    assert open_as_bob(sealed()) == f.inner()


def test_message_for_another_recipient_is_refused() -> None:
    """Carol, handed Bob's envelope, refuses it as addressed to someone else."""
    env = sealed()
    with pytest.raises(WrongRecipientError):
        open_envelope(env, CAROL, "office-c", ALICE.public, now=f.NOW)


def test_hub_cannot_readdress_an_envelope() -> None:
    """An envelope re-addressed to Carol does not decrypt with Carol's key."""
    env = dataclasses.replace(sealed(), recipient="office-c")
    with pytest.raises(BadSignatureError):
        open_envelope(env, CAROL, "office-c", ALICE.public, now=f.NOW)


def test_rewrapped_message_is_refused_by_the_new_recipient() -> None:
    """Bob re-seals Alice's signed inner bytes to Carol; Carol refuses them (signed for Bob)."""
    padded = SealedBox(BOB.private_key).decrypt(sealed().ciphertext)  # exactly what Bob got
    rewrapped = f.seal_raw(
        padded,
        CAROL.public.encrypt,
        msg_id=f.hex_id("msg-1"),
        sender="office-a",
        recipient="office-c",
        exp=f.NOW + 14 * f.DAY,
    )
    with pytest.raises(WrongRecipientError, match="signed for another recipient"):
        open_envelope(
            Envelope.decode(rewrapped.encode()), CAROL, "office-c", ALICE.public, now=f.NOW
        )


def test_expired_message_is_refused_at_and_after_expiry() -> None:
    """A message is refused once `now` reaches its expiry, and opens one second before."""
    env = sealed(expires=f.NOW + 100)
    assert open_as_bob(env, now=f.NOW + 99) == f.inner(expires=f.NOW + 100)
    for now in (f.NOW + 100, f.NOW + 10**6):
        with pytest.raises(ExpiredError):
            open_as_bob(env, now=now)


def test_hub_cannot_extend_the_expiry() -> None:
    """An envelope whose expiry the hub changed no longer matches the signed message."""
    env = dataclasses.replace(sealed(), expires=f.NOW + 400 * f.DAY)
    with pytest.raises(WrongRecipientError, match="does not match"):
        open_as_bob(env)


def test_envelope_with_unknown_version_is_refused() -> None:
    """Envelope version 2 is refused when decoding and when opening."""
    env = dataclasses.replace(sealed(), version=2)
    with pytest.raises(UnsupportedVersionError):
        Envelope.decode(env.encode())
    with pytest.raises(UnsupportedVersionError):
        open_envelope(env, BOB, "office-b", ALICE.public, now=f.NOW)


def test_inner_message_with_unknown_version_is_refused() -> None:
    """A correctly signed inner message of version 2 inside a version-1 envelope is refused."""
    env = dataclasses.replace(sealed(version=2), version=1)
    with pytest.raises(UnsupportedVersionError, match="message version 2"):
        open_as_bob(env)


def test_inner_message_of_unknown_type_is_refused() -> None:
    """An inner message with an unknown type raises UnknownTypeError."""
    body = inner_body(sealed())
    body["type"] = "referral.forward"
    with pytest.raises(UnknownTypeError):
        open_as_bob(reseal(body, BOB.public))


def test_inner_message_signed_by_someone_else_is_refused() -> None:
    """Carol cannot send in Alice's name: the signature does not verify with Alice's key."""
    env = seal(f.inner(), CAROL, BOB.public, ephemeral_secret=EPH)
    with pytest.raises(BadSignatureError):
        open_as_bob(env)


def test_inner_message_with_changed_payload_is_refused() -> None:
    """Changing a signed field (the payload) inside valid encryption breaks the signature."""
    body = inner_body(sealed(payload=ReferralWithdraw(f.hex_id("r"), "consent_withdrawn")))
    body["payload"]["reason"] = "sent_in_error"
    with pytest.raises(BadSignatureError):
        open_as_bob(reseal(body, BOB.public))


def test_envelope_id_must_match_the_signed_id() -> None:
    """An envelope carrying another message id than the signed one is refused."""
    env = reseal(inner_body(sealed()), BOB.public, msg_id=f.hex_id("other"))
    with pytest.raises(WrongRecipientError, match="does not match"):
        open_as_bob(env)


def test_inner_message_expiring_before_creation_is_refused() -> None:
    """A signed inner message whose expiry precedes its creation is malformed (regression)."""
    msg = f.inner(payload=Receipt(f.hex_id("r"), f.NOW))
    body = inner_body(seal(msg, ALICE, BOB.public, ephemeral_secret=EPH))
    body["created"] = body["exp"] + 10
    del body["sig"]
    body["sig"] = ALICE.sign(b"mbe-sync/inner/v1\x00" + pack(body))
    with pytest.raises(MalformedError, match="expires before"):
        open_as_bob(reseal(body, BOB.public))


def test_oversize_envelope_is_refused_by_size_before_decoding() -> None:
    """A 64 MiB input is refused as too large at once, without parsing it."""
    huge = b"\x80" * (64 << 20)  # would be 64 Mi tiny maps if it were parsed
    start = time.perf_counter()
    with pytest.raises(TooLargeError):
        Envelope.decode(huge)
    assert time.perf_counter() - start < 0.5
    with pytest.raises(TooLargeError):
        Envelope.decode(bytes(MAX_ENVELOPE + 1))


def test_oversize_ciphertext_is_refused_before_decrypting() -> None:
    """open_envelope refuses a ciphertext above the largest bucket without decrypting it."""
    env = dataclasses.replace(sealed(), ciphertext=bytes(MAX_CIPHERTEXT + 1))
    with pytest.raises(TooLargeError):
        open_envelope(env, BOB, "office-b", ALICE.public, now=f.NOW)


def test_plaintext_of_a_non_bucket_size_is_refused() -> None:
    """Authentic ciphertext whose plaintext is not padded to a bucket is refused."""
    body = inner_body(sealed())
    raw = pack(body)
    env = f.seal_raw(
        len(raw).to_bytes(4, "big") + raw,
        BOB.public.encrypt,
        msg_id=body["id"],
        sender="office-a",
        recipient="office-b",
        exp=body["exp"],
    )
    with pytest.raises(MalformedError, match="bucket"):
        open_as_bob(env)


def test_seal_refuses_what_the_recipient_would_refuse() -> None:
    """seal raises for a bad code, a bad sender id or a bad message id (regression)."""
    bad_reason = ReferralWithdraw(f.hex_id("r"), "changed_my_mind")
    with pytest.raises(InvalidCodeError):
        seal(f.inner(payload=bad_reason), ALICE, BOB.public, ephemeral_secret=EPH)
    with pytest.raises(MalformedError, match="sender"):
        seal(f.inner(sender="Office A"), ALICE, BOB.public, ephemeral_secret=EPH)
    with pytest.raises(MalformedError, match="message id"):
        seal(f.inner(msg_id="1234"), ALICE, BOB.public, ephemeral_secret=EPH)


def test_a_low_order_key_cannot_even_be_a_seal_recipient() -> None:
    """An all-zero X25519 key is refused as PublicKeys, so seal never sees it (regression)."""
    with pytest.raises(MalformedError, match="small order"):
        PublicKeys(sign=BOB.public.sign, encrypt=bytes(32))


def test_seal_refuses_a_bad_ephemeral_secret_and_inverted_times() -> None:
    """seal needs a 32-byte ephemeral secret and an expiry after creation."""
    with pytest.raises(MalformedError):
        seal(f.inner(), ALICE, BOB.public, ephemeral_secret=b"short")
    with pytest.raises(MalformedError):
        seal(f.inner(expires=f.NOW), ALICE, BOB.public, ephemeral_secret=EPH)


def test_padding_hides_the_exact_size() -> None:
    """Messages of different lengths in one bucket give ciphertexts of the same length."""
    short = seal(
        f.inner(payload=Receipt(f.hex_id("a"), 1)), ALICE, BOB.public, ephemeral_secret=EPH
    )
    longer = sealed()
    assert len(short.ciphertext) == len(longer.ciphertext) == 1024 + 48
