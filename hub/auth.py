"""Authenticating signed node requests (protocol.requests), with persisted nonces.

Order of checks: headers, node known and not revoked, clock skew, signature,
then the nonce. The first three need no body: `precheck` runs them before the
server reads a byte of it, so a request that cannot be authentic is refused
without buffering (or decoding) up to `relay.max_body`; the signature, which
covers the body, is checked once the body is read (bounded).

The nonce is recorded only for a request whose signature holds, so a forger
cannot burn a node's nonces. Nonces live in the database for twice
the skew window (as protocol.requests.NonceCache does in memory), so a restart
does not reopen the window for replays; the primary key makes the check and
the record one atomic insert.

During a key rotation overlap (hub/rotation.py) a signature by the node's
previous key is accepted too, so a node whose running service still holds the
old key keeps syncing until it picks up the new one; afterwards only the new
key counts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlite_utils

from hub.errors import Problem
from hub.settings import HubSettings
from hub.storage import sites as store
from hub.storage.db import write
from protocol.errors import BadSignatureError, ClockSkewError, MalformedError
from protocol.hub_api import ProblemKind
from protocol.keys import PublicKeys
from protocol.requests import SignedRequest, check_skew, parse_request_headers, verify_request


@dataclass(frozen=True)
class SignedCall:
    """What authentication needs from an HTTP request."""

    method: str
    path: str
    body: bytes
    headers: Mapping[str, str]
    now: int


@dataclass(frozen=True)
class Prechecked:
    """A request whose headers, node and clock passed: what checking the body needs."""

    signed: SignedRequest
    keys: tuple[PublicKeys, ...]


def precheck(
    db: sqlite_utils.Database, settings: HubSettings, headers: Mapping[str, str], now: int
) -> Prechecked:
    """The checks that need no body (headers, node known and active, clock skew); read-only."""
    signed = _parse(headers)
    site = _site(db, signed.node_id)
    try:
        check_skew(signed.timestamp, now, settings.auth.max_skew)
    except ClockSkewError as exc:
        raise Problem(ProblemKind.CLOCK_SKEW, 401, str(exc)) from None
    return Prechecked(signed, site.keys_valid_at(now))


def verify_body(pre: Prechecked, call: SignedCall, settings: HubSettings) -> None:
    """The request signature over method, path and body, before the body is decoded.

    The nonce is not recorded here: `record_nonce` does that, in the
    transaction that does the request's work.
    """
    _require_ascii_path(call.path)
    _verify_signature(call, pre.signed, pre.keys, settings)


def _verify_signature(
    call: SignedCall,
    signed: SignedRequest,
    keys: Sequence[PublicKeys],
    settings: HubSettings,
) -> None:
    """Accept a signature by any of `keys` (two during a key rotation's overlap)."""
    for candidate in keys:
        try:
            verify_request(
                call.method,
                call.path,
                call.body,
                signed,
                candidate,
                now=call.now,
                max_skew=settings.auth.max_skew,
            )
        except ClockSkewError as exc:
            raise Problem(ProblemKind.CLOCK_SKEW, 401, str(exc)) from None
        except BadSignatureError:
            continue
        return
    raise Problem(ProblemKind.BAD_SIGNATURE, 401, "the request signature does not verify")


def _parse(headers: Mapping[str, str]) -> SignedRequest:
    try:
        return parse_request_headers(headers)
    except MalformedError as exc:
        raise Problem(
            ProblemKind.MALFORMED, 401, str(exc), title="Missing or malformed signature"
        ) from None


def _site(db: sqlite_utils.Database, node_id: str) -> store.Site:
    site = store.get_site(db, node_id)
    if site is None or site.keys is None:
        raise Problem(ProblemKind.UNKNOWN_NODE, 401, "this node is not enrolled with the hub")
    if site.status == "revoked":
        raise Problem(
            ProblemKind.REVOKED_NODE, 403, "this node has been revoked by the hub operator"
        )
    return site


def _require_ascii_path(path: str) -> None:
    if not path.isascii():
        # Raw non-ASCII bytes in the request line; a node percent-encodes its paths.
        raise Problem(
            ProblemKind.MALFORMED, 400, "the request path must be ASCII (percent-encoded)"
        )


def authenticate(db: sqlite_utils.Database, settings: HubSettings, call: SignedCall) -> str:
    """Check a request in its own short transaction; return the node id or raise a Problem."""
    with write(db, durable=False):
        return check_signed(db, settings, call)


def check_signed(db: sqlite_utils.Database, settings: HubSettings, call: SignedCall) -> str:
    """Return the authenticated node id or raise a Problem naming the refusal.

    Records the nonce; call inside a write transaction, so that work done for
    the same request (an upload) commits together with it.
    """
    signed = _parse(call.headers)
    _require_ascii_path(call.path)
    site = _site(db, signed.node_id)
    _verify_signature(call, signed, site.keys_valid_at(call.now), settings)
    _insert_nonce(db, signed)
    return signed.node_id


def record_nonce(db: sqlite_utils.Database, pre: Prechecked) -> str:
    """For a request whose signature `verify_body` checked: inside the request's write
    transaction, confirm the node is still active and record the nonce."""
    _site(db, pre.signed.node_id)
    _insert_nonce(db, pre.signed)
    return pre.signed.node_id


def _insert_nonce(db: sqlite_utils.Database, signed: SignedRequest) -> None:
    # A lost nonce row only matters if the machine loses power inside the skew
    # window, so `authenticate` commits it without fsync.
    try:
        db.execute(
            "INSERT INTO nonces (node_id, nonce, ts) VALUES (?, ?, ?)",
            (signed.node_id, signed.nonce, signed.timestamp),
        )
    except sqlite3.IntegrityError:
        raise Problem(
            ProblemKind.REPLAYED_NONCE, 401, "this request nonce was already used"
        ) from None


def prune_nonces(db: sqlite_utils.Database, settings: HubSettings, now: int) -> int:
    """Forget nonces older than twice the skew: the clock check refuses those already."""
    with write(db, durable=False):
        cur = db.execute("DELETE FROM nonces WHERE ts < ?", (now - 2 * settings.auth.max_skew,))
        return cur.rowcount
