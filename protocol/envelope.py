"""Sealed node-to-node messages: sign, pad, seal; and the reverse, fully checked.

Layers, outside in:

* `Envelope`: what the hub sees and routes (version, id, sender, recipient,
  expiry, ciphertext). Nothing in it is secret; nothing in it is trusted.
* ciphertext: a libsodium sealed box (`crypto_box_seal` format: ephemeral
  X25519 public key followed by the box) to the recipient's encryption key. We
  build it from `crypto_box` with the ephemeral key passed in, so known-answer
  vectors are possible; the bytes are identical to `SealedBox.encrypt`.
* padding: the plaintext is a 4-byte length, the signed inner message and
  zero bytes up to the next size bucket, so the hub learns only the bucket.
* `InnerMessage`: type, id, sender, recipient, created, expiry and payload,
  signed by the sender's Ed25519 key. Sender, recipient, id and expiry are
  inside the signature, so the hub cannot re-address or re-date an envelope,
  and a recipient cannot re-wrap a message it received for someone else.

Rejected alternative: sign the outer envelope as well. It adds nothing the
inner signature does not already bind, and the hub authenticates the uploader
through the request signature anyway.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from nacl.bindings import crypto_box_easy, crypto_box_seal_open, crypto_scalarmult_base
from nacl.exceptions import CryptoError

from protocol import PROTOCOL_VERSION, SUPPORTED_VERSIONS
from protocol.encoding import (
    as_map,
    exact_keys,
    field_bytes,
    field_int,
    field_str,
    pack,
    unpack,
)
from protocol.envelope_wire import decode_wire
from protocol.errors import (
    BadSignatureError,
    ExpiredError,
    MalformedError,
    TooLargeError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from protocol.ids import MESSAGE_ID, NODE_ID
from protocol.keys import KEY_SIZE, SIGNATURE_SIZE, PrivateKeys, PublicKeys
from protocol.payloads import MAX_CELLS, Payload, assemble, decode_payload, payload_type

# Plaintext sizes the padded inner message is rounded up to.
BUCKETS = (1024, 4096, 16384, 65536, 262144, 1048576)
MAX_PLAINTEXT = BUCKETS[-1]
_SEAL_OVERHEAD = 32 + 16  # ephemeral public key + Poly1305 tag
MAX_CIPHERTEXT = MAX_PLAINTEXT + _SEAL_OVERHEAD
MAX_ENVELOPE = MAX_CIPHERTEXT + 1024
# Element budgets (`protocol.encoding.unpack`): an envelope is a map of six
# (13 elements); an inner message is small but for a statistics report, whose
# cells (a list of four with a map of at most 1 + MAX_CROSS codes: 13 elements
# with its place in `cells`) dominate.
ENVELOPE_ITEMS = 64
MESSAGE_ITEMS = 1024 + 16 * MAX_CELLS
_SIGN_DOMAIN = b"mbe-sync/inner/v1\x00"
# msgpack fixmap headers of the signed map (8 entries) and the body (9, with "sig").
_SIGNED_HEADER = bytes([0x80 | 8])
_SIGNED_PREFIX = _SIGN_DOMAIN + _SIGNED_HEADER
_BODY_HEADER = bytes([0x80 | 9])
_PAYLOAD_KEY = pack("payload")
_SIG_KEY = pack("sig")
_LEN_PREFIX = 4


@dataclass(frozen=True)
class Envelope:
    """The outer, routable form of a sealed message."""

    msg_id: str
    sender: str
    recipient: str
    expires: int
    ciphertext: bytes
    version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        return pack(
            {
                "v": self.version,
                "id": self.msg_id,
                "from": self.sender,
                "to": self.recipient,
                "exp": self.expires,
                "ct": self.ciphertext,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        """Parse untrusted bytes; checks shape and sizes, not authenticity."""
        w = decode_wire(data, MAX_ENVELOPE, MAX_CIPHERTEXT)  # one pass, for most envelopes
        if w is not None:
            return cls(w.id, w.sender, w.to, w.exp, w.ct, w.v)
        m = as_map(unpack(data, MAX_ENVELOPE, ENVELOPE_ITEMS), "envelope")
        version = field_int(m, "v", "envelope", hi=2**16)
        if version not in SUPPORTED_VERSIONS:
            raise UnsupportedVersionError(f"envelope version {version} is not supported")
        exact_keys(m, {"v", "id", "from", "to", "exp", "ct"}, set(), "envelope")
        ct = field_bytes(m, "ct", "envelope")
        if len(ct) > MAX_CIPHERTEXT:
            raise TooLargeError("envelope ciphertext is larger than the biggest bucket")
        return cls(
            version=version,
            msg_id=field_str(m, "id", "envelope", pattern=MESSAGE_ID),
            sender=field_str(m, "from", "envelope", pattern=NODE_ID),
            recipient=field_str(m, "to", "envelope", pattern=NODE_ID),
            expires=field_int(m, "exp", "envelope"),
            ciphertext=ct,
        )


@dataclass(frozen=True)
class InnerMessage:
    """The signed content of a sealed message."""

    msg_id: str
    sender: str
    recipient: str
    created: int
    expires: int
    payload: Payload
    version: int = PROTOCOL_VERSION

    @property
    def type(self) -> str:
        return payload_type(self.payload)

    def signed_part(self) -> bytes:
        payload = pack(self.payload.to_map())
        head, tail = self._entries()
        return b"".join((_SIGNED_PREFIX, head, _PAYLOAD_KEY, payload, tail))

    def _entries(self) -> tuple[bytes, bytes]:
        """The encoded entries of the signed map before "payload" and after it.

        msgpack encodes a map as its header and then each key and value in key
        order, and the keys of a message sort as created, exp, from, id, payload,
        (sig,) to, type, v. So the signed map is `_SIGNED_HEADER`, `head`, the
        "payload" entry and `tail`, and the body `_BODY_HEADER`, `head`, the
        "payload" and "sig" entries and `tail`: exactly `pack` of the map without
        and with "sig" (tests/protocol/test_encoding_pinned.py), with the payload
        encoded once for both.
        """
        head = pack(
            {"created": self.created, "exp": self.expires, "from": self.sender, "id": self.msg_id}
        )
        tail = pack({"to": self.recipient, "type": self.type, "v": self.version})
        return head[1:], tail[1:]  # [1:]: without their fixmap header


def _bucket(size: int) -> int:
    for b in BUCKETS:
        if size <= b:
            return b
    raise TooLargeError(f"message of {size} bytes exceeds the largest bucket")


def _pad(data: bytes) -> bytes:
    framed = _LEN_PREFIX + len(data)
    return b"".join((len(data).to_bytes(_LEN_PREFIX, "big"), data, bytes(_bucket(framed) - framed)))


def _unpad(data: bytes) -> bytes:
    if len(data) not in BUCKETS:
        raise MalformedError("plaintext is not a bucket size")
    n = int.from_bytes(data[:_LEN_PREFIX], "big")
    if n > len(data) - _LEN_PREFIX:
        raise MalformedError("padding length out of range")
    padding = data[_LEN_PREFIX + n :]
    if padding != bytes(len(padding)):
        raise MalformedError("padding is not zero")
    return data[_LEN_PREFIX : _LEN_PREFIX + n]


def _seal_box(plaintext: bytes, recipient: bytes, ephemeral_secret: bytes) -> bytes:
    """libsodium crypto_box_seal with the ephemeral secret passed in."""
    epk = crypto_scalarmult_base(ephemeral_secret)
    nonce = hashlib.blake2b(epk + recipient, digest_size=24).digest()
    try:
        # crypto_box_easy is crypto_box without the 32 zero bytes in front of the
        # plaintext and the 16 in front of the result: the same bytes, two copies fewer.
        return epk + crypto_box_easy(plaintext, nonce, recipient, ephemeral_secret)
    except CryptoError:
        # libsodium refuses a low-order recipient key (the shared secret would be zero).
        raise MalformedError("the recipient's encryption key is not usable") from None


def _check_addressing(inner: InnerMessage) -> None:
    if not isinstance(inner.msg_id, str) or not MESSAGE_ID.fullmatch(inner.msg_id):
        raise MalformedError("message id is not in the expected format")
    if not isinstance(inner.sender, str) or not NODE_ID.fullmatch(inner.sender):
        raise MalformedError("sender is not in the expected format")
    if not isinstance(inner.recipient, str) or not NODE_ID.fullmatch(inner.recipient):
        raise MalformedError("recipient is not in the expected format")


def seal(
    inner: InnerMessage,
    sender_keys: PrivateKeys,
    recipient_public: PublicKeys,
    *,
    ephemeral_secret: bytes,
) -> Envelope:
    """Sign `inner` with the sender's key, pad it and seal it to the recipient.

    `ephemeral_secret` (32 random bytes, fresh for every message) is a parameter
    so the function stays pure; callers pass `os.urandom(32)`.
    """
    if len(ephemeral_secret) != KEY_SIZE:
        raise MalformedError("ephemeral secret must be 32 bytes")
    if inner.expires <= inner.created:
        raise MalformedError("message expires before it is created")
    _check_addressing(inner)
    # The payload is encoded once, the other fields in two small pieces: the signed
    # bytes and the body are put together from the same parts (`InnerMessage._entries`).
    payload = pack(inner.payload.to_map())
    head, tail = inner._entries()
    signature = sender_keys.sign(b"".join((_SIGNED_PREFIX, head, _PAYLOAD_KEY, payload, tail)))
    body = b"".join((_BODY_HEADER, head, _PAYLOAD_KEY, payload, _SIG_KEY, pack(signature), tail))
    # Decode the body as the recipient will: a message it would refuse is refused here.
    decoded = unpack(body, MAX_PLAINTEXT, MESSAGE_ITEMS)
    decode_payload(inner.payload.TYPE, decoded["payload"])
    ciphertext = _seal_box(_pad(body), recipient_public.encrypt, ephemeral_secret)
    return assemble(
        Envelope,
        version=inner.version,
        msg_id=inner.msg_id,
        sender=inner.sender,
        recipient=inner.recipient,
        expires=inner.expires,
        ciphertext=ciphertext,
    )


def open_envelope(
    envelope: Envelope,
    recipient_keys: PrivateKeys,
    recipient_id: str,
    sender_public: PublicKeys,
    *,
    now: int,
) -> InnerMessage:
    """Decrypt and verify; return the inner message or raise a ProtocolError.

    Checks, in order: version, addressed to us, not expired, decryption,
    padding, inner structure, signature by the sender's key, and that the
    inner message agrees with the envelope on id, sender, recipient and expiry.
    """
    if envelope.version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(f"envelope version {envelope.version} is not supported")
    if envelope.recipient != recipient_id:
        raise WrongRecipientError("envelope is addressed to another recipient")
    if envelope.expires <= now:
        raise ExpiredError("message has expired")
    if len(envelope.ciphertext) > MAX_CIPHERTEXT:
        raise TooLargeError("ciphertext is larger than the biggest bucket")
    try:
        # What SealedBox(recipient_keys.private_key).decrypt does, without building the box.
        plaintext = crypto_box_seal_open(
            envelope.ciphertext, recipient_keys.public.encrypt, recipient_keys.encrypt_secret
        )
    except (CryptoError, ValueError, TypeError):
        raise BadSignatureError("ciphertext does not decrypt with our key") from None
    m = as_map(unpack(_unpad(plaintext), MAX_PLAINTEXT, MESSAGE_ITEMS), "message")
    version = field_int(m, "v", "message", hi=2**16)
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(f"message version {version} is not supported")
    exact_keys(
        m, {"v", "type", "id", "from", "to", "created", "exp", "payload", "sig"}, set(), "message"
    )
    type_ = field_str(m, "type", "message", max_len=40)
    inner = assemble(
        InnerMessage,
        version=version,
        msg_id=field_str(m, "id", "message", pattern=MESSAGE_ID),
        sender=field_str(m, "from", "message", pattern=NODE_ID),
        recipient=field_str(m, "to", "message", pattern=NODE_ID),
        created=field_int(m, "created", "message"),
        expires=field_int(m, "exp", "message"),
        payload=decode_payload(type_, m.get("payload")),
    )
    if inner.expires <= inner.created:
        raise MalformedError("message expires before it is created")
    signature = field_bytes(m, "sig", "message", size=SIGNATURE_SIZE)
    sender_public.verify(inner.signed_part(), signature)
    if inner.recipient != recipient_id:
        raise WrongRecipientError("message was signed for another recipient")
    if (inner.msg_id, inner.sender, inner.recipient, inner.expires) != (
        envelope.msg_id,
        envelope.sender,
        envelope.recipient,
        envelope.expires,
    ):
        raise WrongRecipientError("envelope does not match the signed message")
    return inner
