"""Deciding whether a fetched envelope may reach the domain.

Pure apart from the arguments: the worker passes the verified directory, the
hub's keys from the enrollment, our keys and the time. The answer is the
verified inner message, or `IncomingRefused` with a short reason code that is
recorded (metadata only) and logged.

Who may send what: offices send referral messages and receipts, signed with a
key the directory lists for them while they are active (during a key rotation
the previous key too), sealed to our current key or, during our own rotation
overlap, to our previous one; the hub sends only `relay.expired` notices, signed with
the hub key the node learned at enrollment. Statistics travel only to the hub.
"""

from __future__ import annotations

from node.sync.errors import SyncError
from protocol.documents import Directory
from protocol.envelope import Envelope, InnerMessage, open_envelope
from protocol.errors import BadSignatureError, ProtocolError
from protocol.ids import HUB_ID
from protocol.keys import PrivateKeys, PublicKeys
from protocol.payloads import ExpiryNotice, StatsReport
from protocol.requests import DEFAULT_MAX_SKEW

_HUB_ONLY = frozenset({ExpiryNotice.TYPE})
_NEVER_TO_NODES = frozenset({StatsReport.TYPE})


# How far a message's `created` may lie ahead of our clock: the hub refuses
# requests from a clock more than DEFAULT_MAX_SKEW off, so two offices at
# most twice that apart can still exchange messages.
MAX_FUTURE = 2 * DEFAULT_MAX_SKEW


class IncomingRefused(SyncError):
    """A fetched envelope must not be applied; `reason` is a short code for the record."""

    def __init__(self, reason: str, sender: str) -> None:
        self.reason = reason
        self.sender = sender
        super().__init__(f"incoming message refused ({reason})")


class UnknownSender(IncomingRefused):
    """The sender is not in the directory we hold; a fresher directory may know it."""

    def __init__(self, sender: str) -> None:
        super().__init__("unknown-sender", sender)


def decode_envelope(data: bytes, listed_id: str) -> Envelope:
    """Parse the outer envelope; its id must be the one the hub listed it under."""
    try:
        env = Envelope.decode(data)
    except ProtocolError as exc:
        raise IncomingRefused(exc.code, "unknown") from None
    if env.msg_id != listed_id:
        raise IncomingRefused("id-mismatch", env.sender)
    return env


def open_incoming(
    env: Envelope,
    *,
    node_id: str,
    keys: PrivateKeys,
    hub_keys: PublicKeys,
    directory: Directory | None,
    now: int,
    previous_keys: PrivateKeys | None = None,
) -> InnerMessage:
    """Verify and decrypt `env`; raise IncomingRefused (or UnknownSender) otherwise.

    `previous_keys` are our own keys before a rotation, passed only during its
    overlap: a sender that had not yet learned our new key sealed to the old one.
    """
    candidates: tuple[PublicKeys, ...]
    if env.sender == HUB_ID:
        candidates = (hub_keys,)
    else:
        office = directory.office(env.sender) if directory is not None else None
        if office is None:
            raise UnknownSender(env.sender)
        if office.status != "active":
            raise IncomingRefused("revoked-sender", env.sender)
        candidates = office.keys_valid_at(now)
    ours = (keys,) if previous_keys is None else (keys, previous_keys)
    failure: ProtocolError = BadSignatureError("no key to check")
    inner: InnerMessage | None = None
    for own in ours:
        for public in candidates:
            try:
                inner = open_envelope(env, own, node_id, public, now=now)
            except BadSignatureError as exc:
                # During a rotation overlap (theirs or ours) the other key may fit;
                # a ciphertext that does not decrypt is a BadSignatureError too.
                failure = exc
                continue
            except ProtocolError as exc:
                raise IncomingRefused(exc.code, env.sender) from None
            break
        if inner is not None:
            break
    if inner is None:
        raise IncomingRefused(failure.code, env.sender)
    if (inner.type in _HUB_ONLY) != (env.sender == HUB_ID) or inner.type in _NEVER_TO_NODES:
        raise IncomingRefused("unexpected-type", env.sender)
    if inner.created > now + MAX_FUTURE:
        # Sealed "later" than any clock the hub lets talk to it could say: a
        # forged or broken timestamp (history and expiry would be wrong).
        raise IncomingRefused("created-in-future", env.sender)
    return inner
