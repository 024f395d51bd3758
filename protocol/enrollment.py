"""Enrollment codes and the proof a node sends with its public keys.

A code is 30 base32 characters in six groups of five, e.g.
`ABCDE-FGHIJ-KLMNO-PQRST-UVWXY-Z2345`: 80 bits of the hub key fingerprint, 60
bits of one-time secret, and 10 bits of checksum, so a typo is caught before
any network call. Letters are case-insensitive and 0/1/8 are read as O/I/B.

The hub never stores the secret. It derives an Ed25519 key pair from it and
stores only the public half (the "verifier") plus a lookup id. The node
derives the same key pair and signs its public keys with it: this proves it
knows the code without the hub holding anything that would let a thief of its
database enroll. The node also signs the same statement with its own key
(proof of possession), and after the answer checks the hub's keys against the
fingerprint in the code, so there is no trust-on-first-use gap.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from nacl.signing import SigningKey

from protocol.encoding import as_map, exact_keys, field_bytes, field_str, pack, unpack
from protocol.errors import BadEnrollmentCodeError, FingerprintMismatchError
from protocol.keys import KEY_SIZE, SIGNATURE_SIZE, PrivateKeys, PublicKeys, verify_signature

FP_BYTES = 10
SECRET_BITS = 60
_CHECK_BITS = 10
_GROUP = 5
_TOTAL_CHARS = (FP_BYTES * 8 + SECRET_BITS + _CHECK_BITS) // 5
_PERSON_CHECK = b"mbe-code-check"
_PERSON_KEY = b"mbe-code-key"
_PERSON_ID = b"mbe-code-id"
_PROOF_DOMAIN = b"mbe-sync/enroll/v1\x00"
LOOKUP_ID = re.compile(r"[0-9a-f]{32}")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})


@dataclass(frozen=True)
class EnrollmentCode:
    """A parsed code: the hub fingerprint prefix and the one-time secret."""

    fingerprint: bytes
    secret: int

    def __post_init__(self) -> None:
        if len(self.fingerprint) != FP_BYTES:
            raise BadEnrollmentCodeError("fingerprint part has the wrong length")
        if not 0 <= self.secret < 2**SECRET_BITS:
            raise BadEnrollmentCodeError("secret part out of range")

    @classmethod
    def create(cls, hub_public: PublicKeys, secret: int) -> EnrollmentCode:
        """`secret` is 60 random bits from the caller (`secrets.randbits(60)`)."""
        return cls(fingerprint=hub_public.fingerprint_bytes()[:FP_BYTES], secret=secret)

    def _data_bits(self) -> int:
        return (int.from_bytes(self.fingerprint, "big") << SECRET_BITS) | self.secret

    def text(self) -> str:
        nbits = FP_BYTES * 8 + SECRET_BITS
        data = self._data_bits()
        value = (data << _CHECK_BITS) | _checksum(data, nbits)
        chars = [_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(_TOTAL_CHARS))]
        s = "".join(chars)
        return "-".join(s[i : i + _GROUP] for i in range(0, len(s), _GROUP))

    @classmethod
    def parse(cls, text: str) -> EnrollmentCode:
        """Read a code as typed: case, spaces and dashes do not matter."""
        s = "".join(ch for ch in text.upper() if ch not in " -\t").translate(_LOOKALIKES)
        if len(s) != _TOTAL_CHARS:
            raise BadEnrollmentCodeError(
                f"an enrollment code has {_TOTAL_CHARS} characters, this one has {len(s)}"
            )
        value = 0
        for ch in s:
            idx = _ALPHABET.find(ch)
            if idx < 0:
                raise BadEnrollmentCodeError("the code contains a character that is not allowed")
            value = (value << 5) | idx
        data = value >> _CHECK_BITS
        if _checksum(data, FP_BYTES * 8 + SECRET_BITS) != value & ((1 << _CHECK_BITS) - 1):
            raise BadEnrollmentCodeError("the code has a typo (check digits do not match)")
        return cls(
            fingerprint=(data >> SECRET_BITS).to_bytes(FP_BYTES, "big"),
            secret=data & ((1 << SECRET_BITS) - 1),
        )

    def _seed(self) -> bytes:
        raw = self.secret.to_bytes(8, "big") + self.fingerprint
        return hashlib.blake2b(raw, digest_size=KEY_SIZE, person=_PERSON_KEY).digest()

    def verifier(self) -> bytes:
        """What the hub stores: the public key derived from the secret."""
        return bytes(SigningKey(self._seed()).verify_key)

    def lookup_id(self) -> str:
        """What the node sends so the hub finds the code without knowing the secret."""
        raw = self.secret.to_bytes(8, "big") + self.fingerprint
        return hashlib.blake2b(raw, digest_size=16, person=_PERSON_ID).hexdigest()

    def check_hub(self, hub_public: PublicKeys) -> None:
        """Raise FingerprintMismatchError unless these are the keys the code names."""
        if hub_public.fingerprint_bytes()[:FP_BYTES] != self.fingerprint:
            raise FingerprintMismatchError(
                "the hub's key does not match the enrollment code; do not enroll with this hub"
            )


def _checksum(data: int, nbits: int) -> int:
    raw = data.to_bytes((nbits + 7) // 8, "big")
    digest = hashlib.blake2b(raw, digest_size=2, person=_PERSON_CHECK).digest()
    return int.from_bytes(digest, "big") >> (16 - _CHECK_BITS)


@dataclass(frozen=True)
class EnrollmentRequest:
    """What the node sends: the code's lookup id, its public keys, two signatures."""

    lookup_id: str
    keys: PublicKeys
    code_signature: bytes
    node_signature: bytes

    def statement(self) -> bytes:
        return _statement(self.lookup_id, self.keys)

    @classmethod
    def create(cls, code: EnrollmentCode, node_keys: PrivateKeys) -> EnrollmentRequest:
        public = node_keys.public
        lookup = code.lookup_id()
        stmt = _statement(lookup, public)
        code_key = SigningKey(code._seed())
        return cls(
            lookup_id=lookup,
            keys=public,
            code_signature=bytes(code_key.sign(stmt).signature),
            node_signature=node_keys.sign(stmt),
        )

    def encode(self) -> bytes:
        return pack(
            {
                "lookup": self.lookup_id,
                "keys": self.keys.to_map(),
                "code_sig": self.code_signature,
                "node_sig": self.node_signature,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> EnrollmentRequest:
        w = "enrollment"
        m: dict[str, Any] = as_map(unpack(data, 4096), w)
        exact_keys(m, {"lookup", "keys", "code_sig", "node_sig"}, set(), w)
        return cls(
            lookup_id=field_str(m, "lookup", w, pattern=LOOKUP_ID),
            keys=PublicKeys.from_map(m["keys"], w + ".keys"),
            code_signature=field_bytes(m, "code_sig", w, size=SIGNATURE_SIZE),
            node_signature=field_bytes(m, "node_sig", w, size=SIGNATURE_SIZE),
        )

    def verify(self, verifier: bytes) -> None:
        """Hub side: raise BadSignatureError unless both signatures hold."""
        stmt = self.statement()
        verify_signature(verifier, stmt, self.code_signature)
        self.keys.verify(stmt, self.node_signature)


def _statement(lookup_id: str, keys: PublicKeys) -> bytes:
    return _PROOF_DOMAIN + lookup_id.encode() + keys.sign + keys.encrypt
