"""The hub's node-facing HTTP API as one typed contract (docs/hub-api.md).

Every request and answer body is a msgspec `Struct` here, and every problem
kind a member of `ProblemKind`. The hub's handlers, the node's hub client and
the test suite's fake hub all encode and decode through this module, so the
three cannot drift apart the way three hand-written readers did.

Two rules for unknown fields, on purpose:
- Requests the hub reads are strict (`forbid_unknown_fields`): a node that
  sends more than the contract is broken, and the hub says so.
- Answers the node reads tolerate unknown fields, so a newer hub may add a
  field without breaking older nodes.

Binary (msgpack) bodies are first decoded by `protocol.encoding.unpack`, which
enforces the size, length and depth limits before any work, then converted
into the Struct; JSON bodies are decoded by msgspec directly (their size is
capped by the reader). Every failure is a `MalformedError` naming the field
path, never the value (a value may be personal data).

Pure: no I/O, like the rest of `protocol/`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec

from protocol.encoding import DEFAULT_MAX_ITEMS, unpack
from protocol.envelope import MAX_ENVELOPE
from protocol.errors import MalformedError

PROBLEM_BASE = "https://mbe-sync.invalid/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
MSGPACK = "application/msgpack"
# The most ids one acknowledgement may carry.
MAX_ACK_IDS = 10_000
# Its largest body: a map header, "ids", an array header, and each id a
# 32-character str8 (2 + 32 bytes). The hub reads no more.
MAX_ACK_BODY = 16 + MAX_ACK_IDS * 34
# Envelope bytes of one inbox page, at most: the hub's relay.max_fetch_bytes
# may not exceed it, and a page holds at least one message (at most
# MAX_ENVELOPE, which is smaller), so a node reads no more than this.
MAX_INBOX_BYTES = 16 << 20
# The msgpack of one page entry besides its envelope: map header, the keys
# "seq", "id" and "envelope", a uint64, a str8 id and a bin32 header (65 bytes).
_INBOX_ENTRY_OVERHEAD = 80
# A problem kind read from an answer is cut to this length.
_MAX_KIND = 80


class ProblemKind(enum.StrEnum):
    """The last path segment of a problem `type` URI: what went wrong, for a program."""

    # Request shape and size.
    MALFORMED = "malformed"
    TOO_LARGE = "too-large"
    UNKNOWN_TYPE = "unknown-type"
    UNSUPPORTED_VERSION = "unsupported-version"
    INVALID_CODE = "invalid-code"
    # Who is asking (node-wide: no retry of the same request can succeed).
    BAD_SIGNATURE = "bad-signature"
    CLOCK_SKEW = "clock-skew"
    REPLAYED_NONCE = "replayed-nonce"
    UNKNOWN_NODE = "unknown-node"
    REVOKED_NODE = "revoked-node"
    UNAUTHORIZED = "unauthorized"
    # Enrollment and key rotation.
    UNKNOWN_CODE = "unknown-code"
    USED_CODE = "used-code"
    EXPIRED_CODE = "expired-code"
    KEY_REUSE = "key-reuse"
    ROTATION_IN_PROGRESS = "rotation-in-progress"
    # One envelope of an upload (the `rejected` list), or the whole upload.
    FORBIDDEN = "forbidden"
    UNKNOWN_RECIPIENT = "unknown-recipient"
    EXPIRED = "expired"
    TOO_FAR_EXPIRY = "too-far-expiry"
    CONFLICT = "conflict"
    QUOTA_EXCEEDED = "quota-exceeded"
    WRONG_RECIPIENT = "wrong-recipient"
    # Statistics.
    PERIOD_NOT_OVER = "period-not-over"
    INCONSISTENT_REPORT = "inconsistent-report"
    NOT_PUBLISHED = "not-published"
    # The hub itself: it cannot store anything now (a full disk); try again later.
    STORAGE_FULL = "storage-full"
    # The hub's database cannot be reached just now (a failover); try again later.
    STORAGE_UNAVAILABLE = "storage-unavailable"
    # HTTP itself.
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    HTTP_ERROR = "http-error"
    INTERNAL = "internal"


# Refusals that concern the node, not one request or envelope: splitting a
# batch or sending again cannot help until the administrator acts.
NODE_WIDE = frozenset(
    {
        ProblemKind.BAD_SIGNATURE,
        ProblemKind.CLOCK_SKEW,
        ProblemKind.REPLAYED_NONCE,
        ProblemKind.UNKNOWN_NODE,
        ProblemKind.REVOKED_NODE,
    }
)


def problem_type(kind: ProblemKind) -> str:
    """The `type` URI of a problem kind."""
    return PROBLEM_BASE + kind


def problem_kind(type_uri: object) -> str:
    """`https://…/problems/clock-skew` -> `clock-skew`; "" for anything else.

    Returns a plain string, not a `ProblemKind`: a newer hub may send kinds this
    node does not know, and they compare unequal to every member.
    """
    if not isinstance(type_uri, str):
        return ""
    return type_uri.rstrip("/").rsplit("/", 1)[-1][:_MAX_KIND]


# --- field types

MessageId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
NodeId = Annotated[str, msgspec.Meta(pattern="^[a-z0-9][a-z0-9-]{1,62}$")]
Count = Annotated[int, msgspec.Meta(ge=0)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**62)]


class _Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A body the hub reads: unknown fields are refused."""


class _Answer(msgspec.Struct, frozen=True):
    """A body the node reads: unknown fields are ignored."""


# --- GET /v1/info (JSON)


class InfoKeys(_Answer, frozen=True):
    sign: str  # base64
    enc: str  # base64


class Info(_Answer, frozen=True):
    region: str
    versions: list[int]
    hub_keys: InfoKeys
    fingerprint: str


# --- POST /v1/enroll (msgpack answer; the request is protocol.enrollment)


class RawKeys(_Answer, frozen=True):
    sign: bytes
    enc: bytes


class EnrollAnswer(_Answer, frozen=True):
    node_id: str
    cert: bytes
    hub_keys: RawKeys
    directory: bytes


# --- POST /v1/keys/rotate (msgpack answer; the request is a key-rotation document)


class RotationAnswer(_Answer, frozen=True):
    cert: bytes
    previous_until: Count
    directory_version: Count


# --- POST /v1/messages


class UploadRequest(_Request, frozen=True):
    envelopes: list[bytes]


class RejectedEnvelope(_Answer, frozen=True):
    id: MessageId
    type: str
    detail: str = ""


class UploadAnswer(_Answer, frozen=True):
    accepted: list[MessageId]
    rejected: list[RejectedEnvelope]


# --- GET /v1/inbox (msgpack answer)


class InboxMessage(_Answer, frozen=True):
    seq: Seq
    id: MessageId
    envelope: bytes


class InboxPage(_Answer, frozen=True):
    messages: list[InboxMessage]
    next: Seq
    more: bool


# --- POST /v1/inbox/ack


class AckRequest(_Request, frozen=True):
    ids: Annotated[list[MessageId], msgspec.Meta(max_length=MAX_ACK_IDS)]


class AckAnswer(_Answer, frozen=True):
    deleted: Count


# --- POST /v1/stats (the request is an envelope sealed to the hub)


class StatsAnswer(_Answer, frozen=True):
    period: str
    revision: Count
    stored: bool


# --- POST /v1/audit/head (the request is an `audit-head` document signed by the
# node, protocol/documents.py); GET /v1/audit/head answers the stored document


class AuditHeadAnswer(_Answer, frozen=True):
    at: Count
    stored: bool


# --- refusals (RFC 9457, JSON)


class ProblemDocument(_Answer, frozen=True):
    type: str = ""
    title: str = ""
    status: int = 0
    detail: str = ""


# --- push frames on GET /v1/ws (JSON text); a node ignores types it does not know


class MailFrame(msgspec.Struct, frozen=True, tag="mail", tag_field="type"):
    """Messages are waiting in the node's inbox."""


class DirectoryFrame(msgspec.Struct, frozen=True, tag="directory", tag_field="type"):
    """The hub published directory `version`."""

    version: Annotated[int, msgspec.Meta(ge=0)]


PushFrame = MailFrame | DirectoryFrame


# --- encoding and decoding

T = TypeVar("T")

_json_encoder = msgspec.json.Encoder()


def encode_json(body: msgspec.Struct) -> bytes:
    return _json_encoder.encode(body)


def encode_msgpack(body: msgspec.Struct) -> bytes:
    """msgpack with the fields in declaration order (answers are not signed)."""
    return msgspec.msgpack.encode(body)


def decode_json(data: bytes, kind: type[T], what: str) -> T:
    """A JSON body as `kind`; MalformedError naming the field path otherwise."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError as exc:
        raise MalformedError(f"{what}: {_reason(exc)}") from None


def decode_msgpack(
    data: bytes, kind: type[T], what: str, max_bytes: int, max_items: int = DEFAULT_MAX_ITEMS
) -> T:
    """A msgpack body as `kind`, after `unpack`'s limits; MalformedError otherwise.

    `max_items` is `unpack`'s element budget: pass the one the body's contract
    allows (`upload_limits`, `inbox_page_limits`). TooLargeError from `unpack`
    passes through unchanged (it is a 413, not a 400).
    """
    return convert(unpack(data, max_bytes, max_items), kind, what)


# --- the limits of a body, from its contract (docs/hub-api.md, "Limits")


@dataclass(frozen=True)
class BodyLimits:
    """The most bytes and msgpack elements (`protocol.encoding.unpack`) a body may have."""

    max_bytes: int
    max_items: int


def upload_limits(max_batch: int, max_body: int) -> BodyLimits:
    """POST /v1/messages: `{envelopes: [bin, ...]}` with at most `max_batch` envelopes.

    Bytes: each envelope at most MAX_ENVELOPE plus a bin32 header, and never
    more than the hub's `relay.max_body`. Elements: the map (1 + 2) and the
    array (1 + one per envelope); twice the batch is allowed, so that a batch
    somewhat too long still decodes and is refused naming the batch limit.
    """
    return BodyLimits(
        max_bytes=min(max_body, 16 + max_batch * (MAX_ENVELOPE + 5)),
        max_items=16 + 2 * max_batch,
    )


def ack_limits() -> BodyLimits:
    """POST /v1/inbox/ack: `{ids: [str, ...]}` with at most MAX_ACK_IDS ids."""
    return BodyLimits(max_bytes=MAX_ACK_BODY, max_items=16 + MAX_ACK_IDS)


def inbox_page_limits(limit: int) -> BodyLimits:
    """GET /v1/inbox?limit=N: the largest page a hub may answer with.

    Envelope bytes: `limit` envelopes, never more than MAX_INBOX_BYTES. Elements:
    each entry is a map of three (1 + 6, and one more as an item of the
    `messages` array); twice that, so a newer hub may add a field (answers
    the node reads ignore unknown fields).
    """
    return BodyLimits(
        max_bytes=64 + limit * _INBOX_ENTRY_OVERHEAD + min(limit * MAX_ENVELOPE, MAX_INBOX_BYTES),
        max_items=64 + 16 * limit,
    )


# The element budget of the other msgpack answers a node reads (enrollment, key
# rotation): maps of a few fields, with room for a newer hub's additions.
SMALL_ANSWER_ITEMS = 1024


def convert(obj: Any, kind: type[T], what: str) -> T:
    """An already decoded object as `kind` (strict: no str-to-int or int-to-bool)."""
    try:
        return msgspec.convert(obj, type=kind, strict=True)
    except msgspec.ValidationError as exc:
        raise MalformedError(f"{what}: {_reason(exc)}") from None


def decode_push_frame(data: str | bytes) -> PushFrame | None:
    """A push frame, or None for anything unusable or of a type this node does not know."""
    try:
        frame: PushFrame = msgspec.json.decode(data, type=PushFrame)
    except msgspec.DecodeError:
        return None
    return frame


def push_frame(frame: PushFrame) -> str:
    return _json_encoder.encode(frame).decode("ascii")


_UNKNOWN_FIELD = re.compile(r"unknown field `[^`]*`")


def _reason(exc: msgspec.DecodeError) -> str:
    """msgspec names the expected type and the path (`$.ids[3]`), not the value; the
    name of an unknown field is dropped too, since the sender chose it."""
    text = _UNKNOWN_FIELD.sub("an unknown field", " ".join(str(exc).split()))
    return text[:200]
