"""Property tests: every payload type round-trips, and no single-bit change goes unnoticed."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import pack, unpack
from protocol.envelope import Envelope, open_envelope, seal
from protocol.errors import ProtocolError
from protocol.payloads import MESSAGE_TYPES, Payload, Receipt, decode_payload
from tests.protocol import factories as f
from tests.protocol.strategies import PAYLOADS

ALICE = f.keys("office-a")
BOB = f.keys("office-b")
FAST = settings(max_examples=60, deadline=None)
ephemeral_secrets = st.binary(min_size=32, max_size=32)


def test_strategies_cover_every_message_type() -> None:
    """The property tests below draw every payload type the protocol knows."""
    assert set(PAYLOADS) == MESSAGE_TYPES


@pytest.mark.parametrize("type_", sorted(PAYLOADS))
@FAST
@given(data=st.data())
def test_payload_round_trips_through_its_map(type_: str, data: st.DataObject) -> None:
    """to_map, msgpack and decode_payload give back an equal payload."""
    payload = data.draw(PAYLOADS[type_])
    decoded = decode_payload(type_, unpack(pack(payload.to_map())))
    assert decoded == payload
    assert pack(decoded.to_map()) == pack(payload.to_map())


@pytest.mark.parametrize("type_", sorted(PAYLOADS))
@settings(max_examples=25, deadline=None)
@given(data=st.data(), ephemeral=ephemeral_secrets)
def test_payload_round_trips_through_seal_and_open(
    type_: str, data: st.DataObject, ephemeral: bytes
) -> None:
    """seal then encode, decode and open_envelope give back the same inner message."""
    payload: Payload = data.draw(PAYLOADS[type_])
    msg = f.inner(payload)
    wire = seal(msg, ALICE, BOB.public, ephemeral_secret=ephemeral).encode()
    opened = open_envelope(Envelope.decode(wire), BOB, "office-b", ALICE.public, now=f.NOW)
    assert opened == msg


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _open_wire(wire: bytes) -> object:
    return open_envelope(Envelope.decode(wire), BOB, "office-b", ALICE.public, now=f.NOW)


def test_every_single_bit_flip_of_a_small_envelope_is_refused() -> None:
    """Exhaustively: each one-bit change of an encoded envelope raises ProtocolError."""
    msg = f.inner(Receipt(of_msg_id=f.hex_id("x"), received=f.NOW))
    wire = seal(msg, ALICE, BOB.public, ephemeral_secret=f.seed("flip")).encode()
    assert _open_wire(wire) == msg
    accepted = []
    for bit in range(len(wire) * 8):
        try:
            _open_wire(_flip(wire, bit))
        except ProtocolError:
            continue
        accepted.append(bit)
    assert accepted == []


@settings(max_examples=80, deadline=None)
@given(payload=st.one_of(*PAYLOADS.values()), ephemeral=ephemeral_secrets, data=st.data())
def test_a_bit_flip_anywhere_in_the_envelope_is_refused(
    payload: Payload, ephemeral: bytes, data: st.DataObject
) -> None:
    """For any payload, one flipped bit of the encoded envelope makes opening raise."""
    wire = seal(f.inner(payload), ALICE, BOB.public, ephemeral_secret=ephemeral).encode()
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    with pytest.raises(ProtocolError):
        _open_wire(_flip(wire, bit))


@settings(max_examples=80, deadline=None)
@given(payload=st.one_of(*PAYLOADS.values()), ephemeral=ephemeral_secrets, data=st.data())
def test_a_bit_flip_in_the_ciphertext_is_refused(
    payload: Payload, ephemeral: bytes, data: st.DataObject
) -> None:
    """Flipping one ciphertext bit (envelope fields intact) makes opening raise ProtocolError."""
    env = seal(f.inner(payload), ALICE, BOB.public, ephemeral_secret=ephemeral)
    bit = data.draw(st.integers(0, len(env.ciphertext) * 8 - 1))
    tampered = dataclasses.replace(env, ciphertext=_flip(env.ciphertext, bit))
    with pytest.raises(ProtocolError):
        _open_wire(tampered.encode())
