"""Hostile input: every decoder and verifier raises ProtocolError subclasses and nothing else.

Any other exception escaping here fails the test, since hypothesis re-raises it.
Inputs come in three strengths: random bytes, random msgpack maps, and valid
objects with one field replaced, removed or added (which reach the deep checks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import SealedBox

from protocol.documents import Directory, KeyRotation, NodeCertificate, sign_document
from protocol.encoding import pack, unpack
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import Envelope, open_envelope, seal
from protocol.errors import ProtocolError
from protocol.payloads import MESSAGE_TYPES, decode_payload
from protocol.requests import (
    HEADER_NODE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    parse_request_headers,
)
from tests.protocol import factories as f
from tests.protocol.strategies import msgpack_maps, msgpack_values, payloads

ALICE = f.keys("office-a")
BOB = f.keys("office-b")
HUB = f.keys("hub")
FUZZ = settings(max_examples=150, deadline=None)


def refused_or_valid(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn`; a ProtocolError is an acceptable answer, any other exception is not."""
    try:
        return fn(*args, **kwargs)
    except ProtocolError:
        return None


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """`base` with one field, at the top or one level down, replaced, removed or added."""
    m = dict(base)
    target = m
    nested = [k for k, v in m.items() if isinstance(v, dict) and v]
    deeper: bool = draw(st.booleans())
    if nested and deeper:
        key = draw(st.sampled_from(sorted(nested)))
        target = m[key] = dict(m[key])
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "add" or not target:
        target[draw(st.text(max_size=10))] = draw(msgpack_values)
    else:
        key = draw(st.sampled_from(sorted(target)))
        if action == "remove":
            del target[key]
        else:
            target[key] = draw(msgpack_values)
    return m


def _raw_pack(obj: Any) -> bytes:
    # msgpack directly: the fuzz inputs may hold what protocol.encoding.pack refuses.
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


@FUZZ
@given(data=st.binary(max_size=300))
def test_unpack_and_envelope_decode_refuse_random_bytes_cleanly(data: bytes) -> None:
    """unpack and Envelope.decode on random bytes return or raise ProtocolError only."""
    refused_or_valid(unpack, data)
    refused_or_valid(Envelope.decode, data)


@FUZZ
@given(m=msgpack_maps)
def test_envelope_decode_refuses_random_maps_cleanly(m: dict[str, Any]) -> None:
    """Envelope.decode on any msgpack map returns or raises ProtocolError only."""
    refused_or_valid(Envelope.decode, _raw_pack(m))


@FUZZ
@given(ct=st.binary(max_size=200), exp=st.integers(0, 2**40))
def test_open_envelope_refuses_random_ciphertext(ct: bytes, exp: int) -> None:
    """open_envelope on a well-formed envelope with random ciphertext raises ProtocolError."""
    env = Envelope(f.hex_id("m"), "office-a", "office-b", exp, ct)
    assert refused_or_valid(open_envelope, env, BOB, "office-b", ALICE.public, now=f.NOW) is None


def _sealed(plaintext: bytes) -> Envelope:
    return f.seal_raw(
        plaintext,
        BOB.public.encrypt,
        msg_id=f.hex_id("msg-1"),
        sender="office-a",
        recipient="office-b",
        exp=f.NOW + f.DAY,
    )


@FUZZ
@given(plaintext=st.binary(max_size=1100))
def test_open_envelope_refuses_random_authentic_plaintext(plaintext: bytes) -> None:
    """Random bytes correctly sealed to us (padded or not) are refused with ProtocolError."""
    for candidate in (plaintext, f.pad(plaintext)):
        env = _sealed(candidate)
        assert (
            refused_or_valid(open_envelope, env, BOB, "office-b", ALICE.public, now=f.NOW) is None
        )


def _valid_body() -> dict[str, Any]:
    env = seal(f.inner(), ALICE, BOB.public, ephemeral_secret=f.seed("fuzz"))
    padded = SealedBox(BOB.private_key).decrypt(env.ciphertext)
    length = int.from_bytes(padded[:4], "big")
    body: dict[str, Any] = unpack(padded[4 : 4 + length])
    return body


VALID_BODY = _valid_body()


@FUZZ
@given(body=mutated(VALID_BODY) | msgpack_maps)
def test_open_envelope_refuses_mutated_inner_messages(body: dict[str, Any]) -> None:
    """A sealed inner message with one field changed raises ProtocolError, never opens."""
    env = _sealed(f.pad(_raw_pack(body)))
    assert refused_or_valid(open_envelope, env, BOB, "office-b", ALICE.public, now=f.NOW) is None


@FUZZ
@given(type_=st.sampled_from(sorted(MESSAGE_TYPES)) | st.text(max_size=20), m=msgpack_maps)
def test_decode_payload_refuses_random_maps_cleanly(type_: str, m: dict[str, Any]) -> None:
    """decode_payload on random maps, for every type name, returns or raises ProtocolError."""
    refused_or_valid(decode_payload, type_, m)


@FUZZ
@given(data=st.data(), payload=payloads)
def test_decode_payload_refuses_mutated_payloads_cleanly(data: st.DataObject, payload: Any) -> None:
    """A valid payload map with one field changed decodes or raises ProtocolError, nothing else."""
    m = data.draw(mutated(unpack(pack(payload.to_map()))))
    refused_or_valid(decode_payload, payload.TYPE, m)


DOC_BODIES = {
    "node-cert": f.certificate().body(),
    "directory": f.directory().body(),
    "key-rotation": unpack(unpack(f.rotation().sign(ALICE))["body"]),
}


def _verify_all(data: bytes) -> None:
    refused_or_valid(NodeCertificate.verify, data, HUB.public, now=f.NOW)
    refused_or_valid(Directory.verify, data, HUB.public, now=f.NOW)
    refused_or_valid(KeyRotation.verify, data, HUB.public)


@FUZZ
@given(data=st.binary(max_size=300))
def test_document_verifiers_refuse_random_bytes_cleanly(data: bytes) -> None:
    """NodeCertificate, Directory and KeyRotation verify random bytes only to ProtocolError."""
    _verify_all(data)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(DOC_BODIES)))
def test_document_verifiers_refuse_signed_mutated_bodies_cleanly(
    data: st.DataObject, kind: str
) -> None:
    """A hub-signed body with one field changed verifies or raises ProtocolError, nothing else."""
    base = unpack(pack(DOC_BODIES[kind]))
    offices = base.get("offices")
    if offices and data.draw(st.booleans()):
        # Reach into one office entry of the directory, where most fields live.
        base["offices"] = [data.draw(mutated(offices[0])), *offices[1:]]
        body = base
    else:
        body = data.draw(mutated(base) | msgpack_maps)
    try:
        signed = sign_document(kind, body, HUB)
    except ProtocolError:
        return  # the body cannot even be encoded canonically (mixed key types)
    _verify_all(signed)


@FUZZ
@given(data=st.binary(max_size=300) | mutated(unpack(f.enrollment_request().encode())).map(pack))
def test_enrollment_request_decode_refuses_bad_input_cleanly(data: bytes) -> None:
    """EnrollmentRequest.decode on random or mutated bytes returns or raises ProtocolError."""
    refused_or_valid(EnrollmentRequest.decode, data)


@FUZZ
@given(
    text=st.text(max_size=40) | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567-", max_size=40)
)
def test_enrollment_code_parse_refuses_random_text_cleanly(text: str) -> None:
    """EnrollmentCode.parse on any text returns a code or raises ProtocolError."""
    refused_or_valid(EnrollmentCode.parse, text)


header_names = st.sampled_from([HEADER_NODE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE])


@FUZZ
@given(headers=st.dictionaries(header_names | st.text(max_size=10), st.text(max_size=140)))
def test_parse_request_headers_refuses_random_headers_cleanly(headers: dict[str, str]) -> None:
    """parse_request_headers on any header map returns or raises ProtocolError only."""
    refused_or_valid(parse_request_headers, headers)
