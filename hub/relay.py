"""Store-and-forward: accept sealed envelopes, hand them out, delete on ack, expire.

The hub reads only the outer envelope (ids, expiry, size); the ciphertext is
stored as uploaded and returned byte for byte. Idempotency is by message id
and the SHA-256 of the envelope bytes, checked against the queue and against
the metadata log, so a re-upload after delivery is recognised too and not
delivered twice.

Every batch is one transaction committed with fsync before the node hears
"accepted": that answer is what lets the node drop the message from its
outbox.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils
import structlog

from hub.errors import Problem
from hub.problems import from_protocol
from hub.settings import HubSettings
from hub.storage import sites as site_store
from hub.storage.db import write
from protocol.envelope import Envelope, InnerMessage, seal
from protocol.errors import ProtocolError
from protocol.hub_api import (
    InboxMessage,
    InboxPage,
    ProblemKind,
    RejectedEnvelope,
    problem_type,
)
from protocol.ids import HUB_ID
from protocol.keys import PrivateKeys
from protocol.payloads import ExpiryNotice
from support.clock import Random

log = structlog.get_logger()


@dataclass(frozen=True)
class UploadResult:
    accepted: list[str] = field(default_factory=list)
    rejected: list[RejectedEnvelope] = field(default_factory=list)
    # Recipients with newly queued mail, to be told over their WebSocket.
    recipients: set[str] = field(default_factory=set)


def _check(env: Envelope, sender: str, active: set[str], settings: HubSettings, now: int) -> None:
    if env.sender != sender:
        raise _Refuse(ProblemKind.FORBIDDEN, "the envelope's sender is not the authenticated node")
    if env.recipient not in active:
        raise _Refuse(ProblemKind.UNKNOWN_RECIPIENT, "the recipient is not an active enrolled node")
    if env.expires <= now:
        raise _Refuse(ProblemKind.EXPIRED, "the envelope has already expired")
    if env.expires > now + settings.relay.max_ttl:
        raise _Refuse(
            ProblemKind.TOO_FAR_EXPIRY, f"expiry is more than {settings.relay.max_ttl} s ahead"
        )


class _Refuse(Exception):
    def __init__(self, kind: ProblemKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _known_hashes(db: sqlite_utils.Database, ids: list[str]) -> dict[str, bytes]:
    """Hashes of ids already queued or already relayed (delivered or expired)."""
    out: dict[str, bytes] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for table in ("relay_log", "queue"):
            cur = db.execute(
                f"SELECT msg_id, env_hash FROM {table} WHERE msg_id IN ({marks})",  # noqa: S608 -- fixed table names and placeholders
                chunk,
            )
            out.update((r[0], bytes(r[1])) for r in cur.fetchall())
    return out


@dataclass(frozen=True)
class Incoming:
    """An uploaded envelope, decoded (outer layer only) and hashed."""

    envelope: Envelope
    blob: bytes
    digest: bytes


def decode_batch(blobs: list[bytes]) -> list[Incoming]:
    """Decode the outer envelopes; a Problem if any does not decode.

    Without a readable id there is nothing to list under `rejected`, and the
    node built the envelope itself, so the whole upload is refused.
    """
    out: list[Incoming] = []
    for i, blob in enumerate(blobs):
        try:
            env = Envelope.decode(blob)
        except ProtocolError as exc:
            raise from_protocol(exc, f"envelope #{i}") from None
        out.append(Incoming(env, blob, hashlib.sha256(blob).digest()))
    return out


def queue_batch(
    db: sqlite_utils.Database,
    settings: HubSettings,
    sender: str,
    batch: list[Incoming],
    now: int,
) -> UploadResult:
    """Check each envelope and queue the good ones; call inside a durable transaction."""
    result = UploadResult()
    active = site_store.active_ids(db, {i.envelope.recipient for i in batch})
    known = _known_hashes(db, [i.envelope.msg_id for i in batch])
    queue_rows: list[tuple[Any, ...]] = []
    log_rows: list[tuple[Any, ...]] = []
    for item in batch:
        env = item.envelope
        try:
            _check(env, sender, active, settings, now)
            if env.msg_id in known:
                if known[env.msg_id] != item.digest:
                    raise _Refuse(
                        ProblemKind.CONFLICT, "this message id was uploaded with other bytes"
                    )
                result.accepted.append(env.msg_id)
                continue
        except _Refuse as r:
            result.rejected.append(
                RejectedEnvelope(id=env.msg_id, type=problem_type(r.kind), detail=r.detail)
            )
            continue
        known[env.msg_id] = item.digest
        queue_rows.append(
            (env.msg_id, env.sender, env.recipient, env.expires, now, item.digest, item.blob)
        )
        log_rows.append((env.msg_id, env.sender, env.recipient, len(item.blob), item.digest, now))
        result.accepted.append(env.msg_id)
        result.recipients.add(env.recipient)
    _check_quota(db, settings, sender, sum(len(row[6]) for row in queue_rows))
    db.conn.executemany(
        "INSERT INTO queue (msg_id, sender, recipient, expires, received, env_hash, envelope) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        queue_rows,
    )
    db.conn.executemany(
        "INSERT INTO relay_log (msg_id, sender, recipient, size, env_hash, received) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        log_rows,
    )
    return result


def queued_bytes(db: sqlite_utils.Database, sender: str) -> int:
    """Envelope bytes `sender` has in the queue now (kept by triggers, migration 0004)."""
    row = db.execute("SELECT bytes FROM queue_usage WHERE sender = ?", (sender,)).fetchone()
    return int(row[0]) if row else 0


def _check_quota(db: sqlite_utils.Database, settings: HubSettings, sender: str, new: int) -> None:
    """Refuse the whole upload if it would take the sender over its queue quota.

    All or nothing, so the node keeps every message of the batch and sends it
    again once recipients have fetched some of its mail. 429 is what the node
    treats as "try again later" (docs/hub-api.md).
    """
    limit = settings.relay.max_queue_bytes_per_node
    if new == 0:
        return
    queued = queued_bytes(db, sender)
    if queued + new > limit:
        raise Problem(
            ProblemKind.QUOTA_EXCEEDED,
            429,
            f"this node has {queued} bytes queued at the hub and may have at most {limit}; "
            "send it again once recipients have fetched some of its mail",
        )


def store_batch(
    db: sqlite_utils.Database,
    settings: HubSettings,
    sender: str,
    blobs: list[bytes],
    now: int,
) -> UploadResult:
    """Decode, check and queue a batch in one durable transaction."""
    batch = decode_batch(blobs)
    with write(db, durable=True):
        return queue_batch(db, settings, sender, batch, now)


def fetch(
    db: sqlite_utils.Database, node_id: str, after: int, limit: int, max_bytes: int
) -> InboxPage:
    """The next messages of `node_id`'s inbox after cursor `after`, bounded in count and bytes."""
    cur = db.execute(
        "SELECT seq, msg_id, envelope FROM queue WHERE recipient = ? AND seq > ? "
        "ORDER BY seq LIMIT ?",
        (node_id, after, limit + 1),
    )
    messages: list[InboxMessage] = []
    total = 0
    more = False
    for seq, msg_id, envelope in cur.fetchall():
        if len(messages) == limit or (messages and total + len(envelope) > max_bytes):
            more = True
            break
        messages.append(InboxMessage(seq=seq, id=msg_id, envelope=bytes(envelope)))
        total += len(envelope)
    nxt = messages[-1].seq if messages else after
    return InboxPage(messages=messages, next=nxt, more=more)


def has_mail(db: sqlite_utils.Database, node_id: str) -> bool:
    return (
        db.execute("SELECT 1 FROM queue WHERE recipient = ? LIMIT 1", (node_id,)).fetchone()
        is not None
    )


def ack(db: sqlite_utils.Database, node_id: str, ids: list[str], now: int) -> int:
    """Delete acknowledged messages of this node's own inbox; return how many."""
    if not ids:
        return 0
    deleted = 0
    # An ack lost to a power cut only means the message is delivered again,
    # which the recipient drops by id, so this commit skips the fsync.
    with write(db, durable=False):
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            cur = db.execute(
                f"DELETE FROM queue WHERE recipient = ? AND msg_id IN ({marks}) RETURNING msg_id",  # noqa: S608 -- only placeholders are interpolated
                [node_id, *chunk],
            )
            gone = [r[0] for r in cur.fetchall()]
            deleted += len(gone)
            db.conn.executemany(
                "UPDATE relay_log SET acked = ? WHERE msg_id = ?", [(now, m) for m in gone]
            )
    return deleted


def expire(
    db: sqlite_utils.Database,
    keys: PrivateKeys,
    settings: HubSettings,
    now: int,
    random: Random,
) -> set[str]:
    """Remove expired messages and tell each sender; return the senders notified.

    A notice is itself a queued message from `hub`; when a notice expires, no
    further notice is made. A revoked or vanished sender gets none.
    """
    with write(db, durable=True):
        expired = db.execute(
            "DELETE FROM queue WHERE expires <= ? RETURNING msg_id, sender, recipient",
            (now,),
        ).fetchall()
        if not expired:
            return set()
        db.conn.executemany(
            "UPDATE relay_log SET expired = ? WHERE msg_id = ?", [(now, r[0]) for r in expired]
        )
        notified: set[str] = set()
        for msg_id, sender, recipient in expired:
            if sender == HUB_ID:
                continue
            site = site_store.get_site(db, sender)
            if site is None or site.keys is None or site.status != "active":
                continue
            notice_id = random.token_bytes(16).hex()
            try:
                inner = InnerMessage(
                    msg_id=notice_id,
                    sender=HUB_ID,
                    recipient=sender,
                    created=now,
                    expires=now + settings.relay.notice_ttl,
                    payload=ExpiryNotice(of_msg_id=msg_id, recipient=recipient, expired=now),
                )
                env = seal(inner, keys, site.keys, ephemeral_secret=random.token_bytes(32))
            except ProtocolError as exc:
                # One sender whose notice cannot be made (an unusable key, a
                # stored id the protocol refuses) must not keep every other
                # message from expiring: that message goes, without a notice.
                log.warning("relay.notice_skipped", sender=sender, error=type(exc).__name__)
                continue
            blob = env.encode()
            db.execute(
                "INSERT INTO queue (msg_id, sender, recipient, expires, received, env_hash, "
                "envelope) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (notice_id, HUB_ID, sender, env.expires, now, hashlib.sha256(blob).digest(), blob),
            )
            notified.add(sender)
    return notified


def prune_log(db: sqlite_utils.Database, settings: HubSettings, now: int) -> int:
    """Forget metadata of messages that left the queue longer ago than the retention."""
    with write(db, durable=False):
        cur = db.execute(
            "DELETE FROM relay_log WHERE received < ? "
            "AND (acked IS NOT NULL OR expired IS NOT NULL)",
            (now - settings.relay.log_retention,),
        )
        return cur.rowcount


@dataclass(frozen=True)
class QueueStats:
    depth: int
    oldest_age: int
    # The most envelope bytes any one node has queued: how close the fullest
    # sender is to `relay.max_queue_bytes_per_node`.
    max_node_bytes: int


def queue_stats(db: sqlite_utils.Database, now: int) -> QueueStats:
    """Queue depth, the age in seconds of the oldest message, the largest per-node usage."""
    depth, oldest = db.execute("SELECT count(*), min(received) FROM queue").fetchone()
    (most,) = db.execute(
        "SELECT max(bytes) FROM queue_usage WHERE sender != ?", (HUB_ID,)
    ).fetchone()
    return QueueStats(
        depth=int(depth),
        oldest_age=(now - int(oldest)) if oldest is not None else 0,
        max_node_bytes=int(most or 0),
    )
