"""Encoding limits and key types: odd input becomes a ProtocolError, never a library error."""

from __future__ import annotations

import msgpack
import pytest

from protocol.encoding import MAX_DEPTH, pack, unpack
from protocol.errors import BadSignatureError, MalformedError, TooLargeError
from protocol.keys import PrivateKeys, PublicKeys
from tests.protocol import factories as f


def test_pack_sorts_map_keys() -> None:
    """Encoding is deterministic: key order of the input does not matter."""
    assert pack({"b": 1, "a": {"d": 2, "c": 3}}) == pack({"a": {"c": 3, "d": 2}, "b": 1})


@pytest.mark.parametrize("value", ["\ud800", 2**64, {1: "a", "b": 2}, {"set"}])
def test_pack_refuses_unencodable_values_with_malformed_error(value: object) -> None:
    """A lone surrogate, a huge int, mixed key types or a set raise MalformedError (regression)."""
    with pytest.raises(MalformedError, match="cannot encode"):
        pack({"v": value})


def test_unpack_refuses_deep_nesting_and_integer_keys() -> None:
    """Nesting beyond MAX_DEPTH and non-text map keys are malformed."""
    deep: object = 1
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(MalformedError, match="nested"):
        unpack(msgpack.packb(deep))
    with pytest.raises(MalformedError):
        unpack(msgpack.packb({1: 2}))


def test_unpack_checks_the_byte_limit_first() -> None:
    """Input above the limit is refused as too large, even if it would not parse."""
    with pytest.raises(TooLargeError):
        unpack(b"\xc1" * 11, max_bytes=10)
    with pytest.raises(MalformedError):
        unpack(b"\xc1", max_bytes=10)


@pytest.mark.parametrize(("sign", "enc"), [(bytes(31), bytes(32)), (bytes(32), bytes(33))])
def test_public_keys_of_the_wrong_size_are_malformed(sign: bytes, enc: bytes) -> None:
    """PublicKeys refuses keys that are not 32 bytes with MalformedError."""
    with pytest.raises(MalformedError):
        PublicKeys(sign=sign, encrypt=enc)


def test_private_key_file_must_hold_64_bytes() -> None:
    """to_bytes and from_bytes round-trip; any other length is refused."""
    k = f.keys("office-a")
    assert PrivateKeys.from_bytes(k.to_bytes()) == k
    with pytest.raises(MalformedError):
        PrivateKeys.from_bytes(k.to_bytes()[:-1])


def test_private_keys_repr_hides_the_secrets() -> None:
    """repr shows the fingerprint only, never seed bytes."""
    k = f.keys("office-a")
    assert k.sign_seed.hex() not in repr(k)
    assert k.public.fingerprint() in repr(k)


def test_fingerprint_is_four_groups_of_four() -> None:
    """The fingerprint text is 16 base32 characters in groups of four."""
    fp = f.keys("hub").public.fingerprint()
    assert [len(g) for g in fp.split("-")] == [4, 4, 4, 4]


@pytest.mark.parametrize("signature", [b"", bytes(63), bytes(64), b"\xff" * 64])
def test_bad_signatures_raise_bad_signature_error(signature: bytes) -> None:
    """Wrong sizes, zeros and non-canonical bytes all raise BadSignatureError."""
    with pytest.raises(BadSignatureError):
        f.keys("office-a").public.verify(b"message", signature)


def test_invalid_signing_point_does_not_verify() -> None:
    """A public key that is not a curve point verifies nothing, without a library error."""
    odd = PublicKeys(sign=b"\xff" * 32, encrypt=f.keys("office-a").public.encrypt)
    sig = f.keys("office-a").sign(b"message")
    with pytest.raises(BadSignatureError):
        odd.verify(b"message", sig)
