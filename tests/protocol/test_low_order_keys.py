"""X25519 keys of small order are refused wherever public keys enter the protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from protocol.documents import Directory, KeyRotation, NodeCertificate, sign_document
from protocol.encoding import pack, unpack
from protocol.enrollment import EnrollmentRequest
from protocol.envelope import _seal_box
from protocol.errors import MalformedError, ProtocolError
from protocol.keys import PublicKeys
from tests.protocol import factories as f

HUB = f.keys("hub")
SIGN = f.keys("office-a").public.sign
P = 2**255 - 19

# The u-coordinates of the points of order 1, 2, 4 and 8, their non-canonical
# encodings (u + p), and one with the ignored top bit set.
LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    (P - 1).to_bytes(32, "little"),
    P.to_bytes(32, "little"),
    (P + 1).to_bytes(32, "little"),
    bytes(31) + b"\x80",
]


@pytest.mark.parametrize("enc", LOW_ORDER, ids=lambda b: b.hex()[:8])
def test_public_keys_refuse_low_order_encryption_keys(enc: bytes) -> None:
    """PublicKeys raises MalformedError for every X25519 key of small order."""
    with pytest.raises(MalformedError, match="small order"):
        PublicKeys(sign=SIGN, encrypt=enc)


def test_public_keys_accept_ordinary_keys() -> None:
    """Generated keys and the fixture keys pass the check unchanged."""
    for name in ("hub", "office-a", "office-b"):
        keys = f.keys(name).public
        assert PublicKeys(sign=keys.sign, encrypt=keys.encrypt) == keys


def test_seal_box_still_refuses_a_low_order_key() -> None:
    """Defence in depth: sealing to raw low-order key bytes raises MalformedError."""
    with pytest.raises(MalformedError, match="not usable"):
        _seal_box(b"x" * 64, bytes(32), bytes(range(32)))


def _resign(signed: bytes, kind: str, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The document with its body changed by `change` and signed again by the hub."""
    body = unpack(unpack(signed)["body"])
    change(body)
    return sign_document(kind, body, HUB)


def _zero_office_key(body: dict[str, Any]) -> None:
    body["offices"][0]["keys"]["enc"] = bytes(32)


def _zero_previous_key(body: dict[str, Any]) -> None:
    body["offices"][1]["prev_keys"]["enc"] = bytes(32)


@pytest.mark.parametrize("change", [_zero_office_key, _zero_previous_key])
def test_directory_with_a_low_order_key_is_refused(
    change: Callable[[dict[str, Any]], None],
) -> None:
    """A hub-signed directory listing a low-order (current or previous) key is a ProtocolError."""
    data = _resign(f.directory().sign(HUB), Directory.KIND, change)
    with pytest.raises(ProtocolError):
        Directory.verify(data, HUB.public, now=f.NOW)


def test_certificate_with_a_low_order_key_is_refused() -> None:
    """A hub-signed certificate for a low-order key is a ProtocolError."""

    def zero(body: dict[str, Any]) -> None:
        body["keys"]["enc"] = bytes(32)

    data = _resign(f.certificate().sign(HUB), NodeCertificate.KIND, zero)
    with pytest.raises(ProtocolError):
        NodeCertificate.verify(data, HUB.public, now=f.NOW)


def test_key_rotation_to_a_low_order_key_is_refused() -> None:
    """A correctly signed rotation naming a low-order new key is a ProtocolError."""
    old = f.keys("office-a")
    body = {"node": "office-a", "keys": {"sign": SIGN, "enc": bytes(32)}, "created": f.NOW}
    with pytest.raises(ProtocolError):
        KeyRotation.verify(sign_document(KeyRotation.KIND, body, old), old.public)


def test_enrollment_request_with_a_low_order_key_is_refused() -> None:
    """An enrollment request carrying a low-order key does not decode."""
    m = unpack(f.enrollment_request().encode())
    m["keys"]["enc"] = LOW_ORDER[2]
    with pytest.raises(MalformedError):
        EnrollmentRequest.decode(pack(m))


def test_enrollment_proof_still_verifies_without_an_encryption_key() -> None:
    """The code proof is checked against the verifier alone (no dummy key involved)."""
    req = f.enrollment_request()
    req.verify(f.enrollment_code().verifier())
