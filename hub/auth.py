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

A full disk must not stop the hub from handing out what it stores: reading
the inbox, the directory and the push channel need no write but the nonce.
When that write fails for lack of space (`disk_full`), `authenticate` checks
the request again read-only and keeps the nonce in memory (`NonceMemory`),
which refuses a replay as the table would. The first request whose nonce can
be written again writes the held ones too (persisted on recovery), so from
then on a restart loses nothing. The trade-off: a hub restarted while the disk
is still full forgets the held nonces, and a request recorded only there could
be replayed until its timestamp leaves the skew window (`auth.max_skew`, 300 s
by default). Such a request is one the node signed for itself (the signature
covers method, path and body) and every one of them is harmless when repeated:
an inbox page or the directory to its own node, an ack of messages already
deleted, a push connection. Uploads and other writes fail whole on a full disk
and leave nothing that a replay could repeat.

During a key rotation overlap (hub/rotation.py) a signature by the node's
previous key is accepted too, so a node whose running service still holds the
old key keeps syncing until it picks up the new one; afterwards only the new
key counts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from hub.errors import Problem, StorageFull
from hub.settings import HubSettings
from hub.storage import sites as store
from hub.storage.db import disk_full, write
from hub.storage.engine import ENGINE_OR_OS_ERRORS, Db
from protocol.errors import BadSignatureError, ClockSkewError, MalformedError
from protocol.hub_api import ProblemKind
from protocol.keys import PublicKeys
from protocol.requests import SignedRequest, check_skew, parse_request_headers, verify_request

log = structlog.get_logger()
# Nonces held in memory at most (about 100 bytes each): past this, read-only
# requests are refused as `storage-full` too rather than unprotected.
MAX_HELD_NONCES = 100_000


class NonceMemory:
    """Nonces of authenticated requests that could not be written (a full disk).

    One per hub process (app key `NONCES`); used from the database thread, and
    locked all the same. Empty while the disk has room.
    """

    def __init__(self, max_skew: int, limit: int = MAX_HELD_NONCES) -> None:
        self._max_skew = max_skew
        self._limit = limit
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], int] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def holds(self, signed: SignedRequest) -> bool:
        with self._lock:
            return (signed.node_id, signed.nonce) in self._held

    def hold(self, signed: SignedRequest, now: int) -> None:
        """Remember a nonce that could not be written; refuse a repeat."""
        with self._lock:
            self._prune(now)
            key = (signed.node_id, signed.nonce)
            if key in self._held:
                raise _replayed()
            if len(self._held) >= self._limit:
                raise StorageFull()
            first = not self._held
            self._held[key] = signed.timestamp
        if first:
            log.warning("auth.nonces_in_memory", reason="disk-full")

    def pending(self, now: int) -> list[tuple[str, str, int]]:
        """The held nonces still inside the window, to be written."""
        with self._lock:
            self._prune(now)
            return [(node, nonce, ts) for (node, nonce), ts in self._held.items()]

    def written(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Forget nonces that are in the database now."""
        if not rows:
            return
        with self._lock:
            for node, nonce, _ in rows:
                self._held.pop((node, nonce), None)
            left = len(self._held)
        log.info("auth.nonces_persisted", count=len(rows), left=left)

    def _prune(self, now: int) -> None:
        # Older than twice the skew: the clock check refuses those already.
        horizon = now - 2 * self._max_skew
        if any(ts < horizon for ts in self._held.values()):
            self._held = {k: ts for k, ts in self._held.items() if ts >= horizon}


def _replayed() -> Problem:
    return Problem(ProblemKind.REPLAYED_NONCE, 401, "this request nonce was already used")


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


def precheck(db: Db, settings: HubSettings, headers: Mapping[str, str], now: int) -> Prechecked:
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


def _site(db: Db, node_id: str) -> store.Site:
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


def authenticate(
    db: Db,
    settings: HubSettings,
    call: SignedCall,
    nonces: NonceMemory | None = None,
) -> str:
    """Check a request in its own short transaction; return the node id or raise a Problem.

    With `nonces`, a full disk does not refuse the request: it is checked again
    read-only and its nonce held in memory (see the module docstring); the
    held nonces are written with the next nonce that can be.
    """
    pending = nonces.pending(call.now) if nonces is not None else []
    try:
        with write(db, durable=False):
            node = check_signed(db, settings, call, nonces)
            db.executemany(
                "INSERT OR IGNORE INTO nonces (node_id, nonce, ts) VALUES (?, ?, ?)", pending
            )
    except ENGINE_OR_OS_ERRORS as exc:
        if nonces is None or not disk_full(exc):
            raise
    else:
        if nonces is not None:
            nonces.written(pending)
        return node
    # The disk is full: the same checks, without writing.
    signed = _parse(call.headers)
    _require_ascii_path(call.path)
    site = _site(db, signed.node_id)
    _verify_signature(call, signed, site.keys_valid_at(call.now), settings)
    if _nonce_stored(db, signed):
        raise _replayed()
    nonces.hold(signed, call.now)
    return signed.node_id


def check_signed(
    db: Db,
    settings: HubSettings,
    call: SignedCall,
    nonces: NonceMemory | None = None,
) -> str:
    """Return the authenticated node id or raise a Problem naming the refusal.

    Records the nonce; call inside a write transaction, so that work done for
    the same request (an upload) commits together with it. A nonce in `nonces`
    (held while the disk was full) is refused like one in the table.
    """
    signed = _parse(call.headers)
    _require_ascii_path(call.path)
    site = _site(db, signed.node_id)
    _verify_signature(call, signed, site.keys_valid_at(call.now), settings)
    _insert_nonce(db, signed, nonces)
    return signed.node_id


def record_nonce(db: Db, pre: Prechecked, nonces: NonceMemory | None = None) -> str:
    """For a request whose signature `verify_body` checked: inside the request's write
    transaction, confirm the node is still enrolled and not revoked, and record the nonce.

    One statement while all is well (the nonce is inserted only if the site's row
    allows it); only when nothing was inserted is the site read again, to say why:
    unknown or revoked as `_site` says, else the nonce was used already. The same
    refusals, in the same order, as `_site` then `_insert_nonce`.
    """
    signed = pre.signed
    cur = db.execute(_RECORD_NONCE, (signed.nonce, signed.timestamp, signed.node_id))
    if cur.rowcount == 0:
        _site(db, signed.node_id)
        raise _replayed()
    if nonces is not None and nonces.holds(signed):
        raise _replayed()  # the row just written goes with the request's savepoint
    return signed.node_id


# The nonce, if the site has keys and is not revoked (what `_site` accepts; a site
# whose stored keys are unusable is refused by `precheck` before this). The casts
# give PostgreSQL the parameters' types, which an INSERT ... SELECT does not infer.
_RECORD_NONCE = (
    "INSERT INTO nonces (node_id, nonce, ts) SELECT node_id, CAST(? AS TEXT), CAST(? AS BIGINT) "
    "FROM sites WHERE node_id = ? AND status <> 'revoked' AND sign_key IS NOT NULL "
    "AND enc_key IS NOT NULL ON CONFLICT DO NOTHING"
)


def _nonce_stored(db: Db, signed: SignedRequest) -> bool:
    return (
        db.execute(
            "SELECT 1 FROM nonces WHERE node_id = ? AND nonce = ?", (signed.node_id, signed.nonce)
        ).fetchone()
        is not None
    )


def _insert_nonce(db: Db, signed: SignedRequest, nonces: NonceMemory | None) -> None:
    # A lost nonce row only matters if the machine loses power inside the skew
    # window, so `authenticate` commits it without fsync.
    if nonces is not None and nonces.holds(signed):
        raise _replayed()
    # ON CONFLICT rather than catching the unique error: on PostgreSQL an error
    # ends the transaction, and a second hub process inserting the same nonce
    # waits for the first one's commit, then inserts nothing.
    cur = db.execute(
        "INSERT INTO nonces (node_id, nonce, ts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (signed.node_id, signed.nonce, signed.timestamp),
    )
    if cur.rowcount == 0:
        raise _replayed()


def prune_nonces(db: Db, settings: HubSettings, now: int) -> int:
    """Forget nonces older than twice the skew: the clock check refuses those already."""
    with write(db, durable=False):
        cur = db.execute("DELETE FROM nonces WHERE ts < ?", (now - 2 * settings.auth.max_skew,))
        return cur.rowcount
