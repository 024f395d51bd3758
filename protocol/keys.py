"""Key pairs of nodes and the hub, public key bundles, fingerprints.

Every party holds two keys: Ed25519 for signing and X25519 for receiving
sealed messages. Constructors only validate; the one place randomness enters is
`PrivateKeys.generate()`, and tests build keys from fixed seeds instead.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from nacl.bindings import (
    crypto_scalarmult,
    crypto_sign,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)
from nacl.exceptions import BadSignatureError as NaclBadSignature
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from protocol.encoding import as_map, exact_keys, field_bytes
from protocol.errors import BadSignatureError, MalformedError

KEY_SIZE = 32
SIGNATURE_SIZE = 64
_FP_PERSON = b"mbe-sync-fp-v1"
# Any clamped scalar: it is a multiple of the cofactor 8, so a key of small
# order (all zeros among them) always multiplies to the all-zero point.
_PROBE_SCALAR = bytes([8]) + bytes(30) + bytes([64])


def b32(data: bytes) -> str:
    """Crockford-free, unpadded RFC 4648 base32: unambiguous enough to read aloud."""
    return base64.b32encode(data).decode("ascii").rstrip("=")


def verify_signature(sign_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise BadSignatureError unless `signature` is the Ed25519 key's over `message`."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise BadSignatureError("signature has the wrong size")
    # What `VerifyKey(sign_key).verify(message, signature)` does, without building
    # the VerifyKey: its checks of the key, then libsodium on signature || message.
    if not isinstance(sign_key, bytes) or len(sign_key) != KEY_SIZE:
        raise BadSignatureError("signature does not verify")
    try:
        crypto_sign_open(signature + message, sign_key)
    except (NaclBadSignature, ValueError, TypeError):
        raise BadSignatureError("signature does not verify") from None


def _check_encryption_key(key: bytes) -> None:
    """Refuse an X25519 key of small order (all zeros among them).

    Sealing to such a key fails (libsodium refuses the all-zero shared secret),
    so a party holding one could receive nothing: refusing it wherever keys
    enter (enrollment, rotation, certificates, the directory) keeps that
    failure away from every sender. One scalar multiplication, about 30 us,
    the first time a process meets a key; the answer is remembered.
    """
    if _small_order(key):
        raise MalformedError("encryption public key is of small order (unusable)")


# Room for the keys of a full directory (current and previous, 5000 offices) and more.
_CHECKED_KEYS = 16384


@functools.lru_cache(maxsize=_CHECKED_KEYS)
def _small_order(key: bytes) -> bool:
    """True for a key of small order: a pure function of its 32 bytes, so its answer
    is kept (the hub reads every site's keys from its database on each directory
    version and request; a node checks every key of each directory it receives)."""
    try:
        product = crypto_scalarmult(_PROBE_SCALAR, key)
    except (CryptoError, RuntimeError):
        # libsodium reports the all-zero result as an error.
        return True
    return not any(product)


@dataclass(frozen=True)
class PublicKeys:
    """The public half of a party's keys, as they travel in certificates and the directory."""

    sign: bytes
    encrypt: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.sign, bytes) or len(self.sign) != KEY_SIZE:
            raise MalformedError("signing public key must be 32 bytes")
        if not isinstance(self.encrypt, bytes) or len(self.encrypt) != KEY_SIZE:
            raise MalformedError("encryption public key must be 32 bytes")
        _check_encryption_key(self.encrypt)

    def fingerprint_bytes(self) -> bytes:
        return hashlib.blake2b(self.sign + self.encrypt, digest_size=20, person=_FP_PERSON).digest()

    def fingerprint(self) -> str:
        """A short, human-checkable form: 16 base32 characters in groups of four."""
        text = b32(self.fingerprint_bytes()[:10])
        return "-".join(text[i : i + 4] for i in range(0, len(text), 4))

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise BadSignatureError unless `signature` is this key's over `message`."""
        verify_signature(self.sign, message, signature)

    def to_map(self) -> dict[str, Any]:
        return {"sign": self.sign, "enc": self.encrypt}

    @classmethod
    def from_map(cls, obj: Any, what: str = "keys") -> PublicKeys:
        m = as_map(obj, what)
        exact_keys(m, {"sign", "enc"}, set(), what)
        return cls(
            sign=field_bytes(m, "sign", what, size=KEY_SIZE),
            encrypt=field_bytes(m, "enc", what, size=KEY_SIZE),
        )


@dataclass(frozen=True)
class PrivateKeys:
    """A party's secret keys: 32-byte Ed25519 seed and 32-byte X25519 secret."""

    sign_seed: bytes
    encrypt_secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.sign_seed, bytes) or len(self.sign_seed) != KEY_SIZE:
            raise MalformedError("signing seed must be 32 bytes")
        if not isinstance(self.encrypt_secret, bytes) or len(self.encrypt_secret) != KEY_SIZE:
            raise MalformedError("encryption secret must be 32 bytes")

    def __repr__(self) -> str:
        # Keep secrets out of tracebacks and logs.
        return f"PrivateKeys(public={self.public.fingerprint()})"

    @classmethod
    def generate(cls) -> PrivateKeys:
        """Fresh random keys; the only place this module draws randomness."""
        return cls(
            sign_seed=bytes(SigningKey.generate()),
            encrypt_secret=bytes(PrivateKey.generate()),
        )

    # Derived once per instance and kept (functools.cached_property stores into the
    # instance's __dict__, which a frozen dataclass without slots has): deriving the
    # Ed25519 key pair costs more than a signature. Equality and hashing stay on
    # the two seeds (the dataclass fields), the repr shows the fingerprint only.
    @functools.cached_property
    def signing_key(self) -> SigningKey:
        return SigningKey(self.sign_seed)

    @functools.cached_property
    def _ed25519_secret(self) -> bytes:
        """libsodium's 64-byte Ed25519 secret key (seed || public key)."""
        return crypto_sign_seed_keypair(self.sign_seed)[1]

    @functools.cached_property
    def private_key(self) -> PrivateKey:
        return PrivateKey(self.encrypt_secret)

    @functools.cached_property
    def public(self) -> PublicKeys:
        return PublicKeys(
            sign=bytes(self.signing_key.verify_key),
            encrypt=bytes(self.private_key.public_key),
        )

    def sign(self, message: bytes) -> bytes:
        """Detached Ed25519 signature (deterministic, so vectors are stable)."""
        return crypto_sign(message, self._ed25519_secret)[:SIGNATURE_SIZE]

    def to_bytes(self) -> bytes:
        """64 bytes for the key file: signing seed, then encryption secret."""
        return self.sign_seed + self.encrypt_secret

    @classmethod
    def from_bytes(cls, data: bytes) -> PrivateKeys:
        if len(data) != 2 * KEY_SIZE:
            raise MalformedError("a key file holds exactly 64 bytes")
        return cls(sign_seed=data[:KEY_SIZE], encrypt_secret=data[KEY_SIZE:])


def keys_valid_at(
    current: PublicKeys, previous: PublicKeys | None, previous_until: int, now: int
) -> tuple[PublicKeys, ...]:
    """The keys of an office that count at `now`: the current ones, plus the previous
    ones during the overlap after a key rotation (until `previous_until`, exclusive).

    The one rule for the hub (request signatures, statistics reports) and the
    offices (which sender keys a sealed message may be signed with).
    """
    if previous is not None and now < previous_until:
        return (current, previous)
    return (current,)
