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
import sqlite3
from dataclasses import dataclass, field
from typing import Any, NoReturn

import structlog

from hub.errors import Problem
from hub.problems import from_protocol
from hub.settings import HubSettings
from hub.storage import sites as site_store
from hub.storage.db import write
from hub.storage.engine import SQLITE, Cursor, Db
from hub.storage.integrity import is_corruption
from hub.storage.postgres import PgDb
from protocol.envelope import Envelope, InnerMessage, seal
from protocol.errors import ProtocolError
from protocol.hub_api import (
    InboxMessage,
    InboxPage,
    ProblemKind,
    RejectedEnvelope,
    problem_type,
)
from protocol.ids import HUB_ID, ID_RANDOM_BYTES, time_ordered_id
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


def _known_hashes(db: Db, ids: list[str]) -> dict[str, bytes]:
    """Hashes of ids already queued or already relayed (delivered or expired).

    Both tables in one statement per 500 ids (one step of the database
    thread, not two); the queue's hash comes last and counts where both hold
    one. On PostgreSQL the ids go as one array, joined to each table's id
    index: a list of 100 placeholders was parsed anew by psycopg, in Python,
    on every call (its cache keeps small statements only), and `msg_id =
    ANY(array)` was planned as a scan of the whole metadata log once the
    prepared statement's generic plan was made on a small table.
    """
    out: dict[str, bytes] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        cur: Cursor
        if isinstance(db, PgDb):
            cur = db.execute(_PG_KNOWN, [chunk, chunk])
        else:
            marks = ",".join("?" * len(chunk))
            cur = db.execute(
                f"SELECT 0, msg_id, env_hash FROM relay_log WHERE msg_id IN ({marks}) "  # noqa: S608 -- only placeholders are interpolated
                f"UNION ALL SELECT 1, msg_id, env_hash FROM queue WHERE msg_id IN ({marks}) "
                "ORDER BY 1",
                chunk * 2,
            )
        out.update((r[1], bytes(r[2])) for r in cur.fetchall())
    return out


_PG_KNOWN = (
    "SELECT 0, l.msg_id, l.env_hash FROM unnest(CAST(? AS TEXT[])) AS i(id) "
    "JOIN relay_log l ON l.msg_id = i.id UNION ALL "
    "SELECT 1, q.msg_id, q.env_hash FROM unnest(CAST(? AS TEXT[])) AS j(id) "
    "JOIN queue q ON q.msg_id = j.id ORDER BY 1"
)


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
    db: Db,
    settings: HubSettings,
    sender: str,
    batch: list[Incoming],
    now: int,
) -> UploadResult:
    """Check each envelope and queue the good ones; call inside a durable transaction."""
    result = UploadResult()
    # Until the commit, no other hub process queues for this sender: its quota
    # and the ids it already uploaded are read and written as one.
    db.lock("queue.sender", sender)
    active = site_store.active_ids(db, {i.envelope.recipient for i in batch})
    known = _known_hashes(db, [i.envelope.msg_id for i in batch])
    fresh: list[Incoming] = []
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
        fresh.append(item)
        result.accepted.append(env.msg_id)
        result.recipients.add(env.recipient)
    store_rows(db, sender, fresh, now, settings.relay.max_queue_bytes_per_node)
    # Recipients connected to another hub process hear of it at the commit.
    db.notify("mail", result.recipients)
    return result


def store_rows(
    db: Db, sender: str, items: list[Incoming], now: int, limit: int | None = None
) -> None:
    """Queue checked envelopes of `sender`: its byte count, the queue rows, the metadata log's.

    Everything the hub writes for an upload's envelopes and nothing else
    (`bench.relay`'s schema ceiling times exactly this); call inside the
    upload's durable transaction. With `limit`, an upload that would take the
    sender over it is refused whole (`_refuse_over_quota`) before a row is
    written.
    """
    if not items:
        return
    new = sum(len(item.blob) for item in items)
    queued = add_usage(db, sender, new)
    if limit is not None and queued > limit:
        _refuse_over_quota(queued - new, limit)
    queue_rows: list[tuple[Any, ...]] = []
    log_rows: list[tuple[Any, ...]] = []
    for item in items:
        env = item.envelope
        queue_rows.append(
            (env.msg_id, env.sender, env.recipient, env.expires, now, item.digest, item.blob)
        )
        log_rows.append((env.msg_id, env.sender, env.recipient, len(item.blob), item.digest, now))
    _insert_rows(db, _QUEUE_INSERT, queue_rows)
    _insert_rows(db, _LOG_INSERT, log_rows)


# One upsert per upload, not a trigger per row (migration 0011): `queue_usage.bytes`
# names the stored count (PostgreSQL would find a bare `bytes` ambiguous).
_USAGE_ADD = (
    "INSERT INTO queue_usage (sender, bytes) VALUES (?, ?) ON CONFLICT (sender) "
    "DO UPDATE SET bytes = queue_usage.bytes + excluded.bytes RETURNING bytes"
)


def add_usage(db: Db, sender: str, size: int) -> int:
    """Count `size` more bytes queued by `sender`; return its bytes queued now.

    Call in the transaction that inserts those bytes into `queue`: every row
    enters it through this (uploads: `store_rows`; expiry notices: `_notify`),
    and the trigger `queue_usage_delete` takes them off again, so the count is
    exact. On PostgreSQL the upsert locks the sender's row until the commit.
    """
    row = db.execute(_USAGE_ADD, (sender, size)).fetchone()
    return int(row[0])


_QUEUE_INSERT = (
    "INSERT INTO queue (msg_id, sender, recipient, expires, received, env_hash, envelope) VALUES "
)
_LOG_INSERT = "INSERT INTO relay_log (msg_id, sender, recipient, size, env_hash, received) VALUES "
# PostgreSQL: the same rows as one array per column, unnested on the server in
# their order (the queue's seq follows it), one statement of a fixed text.
# psycopg's own placeholders: `%b`, binary.
_PG_QUEUE_INSERT = (
    "INSERT INTO queue (msg_id, sender, recipient, expires, received, env_hash, envelope) "
    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::bigint[], "
    "%b::bytea[], %b::bytea[])"
)
_PG_LOG_INSERT = (
    "INSERT INTO relay_log (msg_id, sender, recipient, size, env_hash, received) "
    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::bytea[], "
    "%b::bigint[])"
)
_PG_INSERTS = {_QUEUE_INSERT: _PG_QUEUE_INSERT, _LOG_INSERT: _PG_LOG_INSERT}
# Rows per INSERT statement: 500 x 7 parameters stay far below SQLite's limit (32 766).
_ROWS_PER_INSERT = 500


def _insert_rows(db: Db, head: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert `rows` with one statement per 500 rows rather than one per row.

    The same rows, in the same order, and the same triggers as `executemany`;
    but the database thread binds and steps once per statement instead of once
    per row, and each step gives up Python's GIL and waits to get it back
    while the event loop or a decoding thread holds it (issue 11, measured
    alone: 34 µs a message for both inserts one row at a time, 20 µs so).
    On PostgreSQL all rows go in one statement of one array per column
    (`_PG_INSERTS`): a VALUES list of 700 placeholders was parsed anew by
    psycopg, in Python, on every call (its cache keeps small statements only).
    """
    if not rows:
        return
    if isinstance(db, PgDb):
        # Straight to psycopg, for `%b`: arrays sent in binary, each blob as it
        # is; `PgDb.execute` would send text, every byte as two hex digits,
        # built by psycopg in Python.
        columns = [list(column) for column in zip(*rows, strict=True)]
        db.conn.execute(_PG_INSERTS[head], columns)
        return
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        values = ",".join(["(" + ",".join("?" * len(chunk[0])) + ")"] * len(chunk))
        db.execute(head + values, [v for row in chunk for v in row])


def _refuse_over_quota(queued: int, limit: int) -> NoReturn:
    """Refuse the whole upload: it would take the sender over its queue quota.

    All or nothing, so the node keeps every message of the batch and sends it
    again once recipients have fetched some of its mail (the count just added
    is undone with the upload's savepoint or transaction). 429 is what the
    node treats as "try again later" (docs/hub-api.md).
    """
    raise Problem(
        ProblemKind.QUOTA_EXCEEDED,
        429,
        f"this node has {queued} bytes queued at the hub and may have at most {limit}; "
        "send it again once recipients have fetched some of its mail",
    )


def store_batch(
    db: Db,
    settings: HubSettings,
    sender: str,
    blobs: list[bytes],
    now: int,
) -> UploadResult:
    """Decode, check and queue a batch in one durable transaction."""
    batch = decode_batch(blobs)
    with write(db, durable=True):
        return queue_batch(db, settings, sender, batch, now)


_ROW = "SELECT seq, msg_id, sender, env_hash, envelope FROM queue"


@dataclass(frozen=True)
class Damaged:
    """A queued row whose envelope no longer matches the hash stored at upload."""

    seq: int
    msg_id: str | None
    sender: str | None


@dataclass(frozen=True)
class Fetched:
    """An inbox page, and what was wrong with the rows left out of it."""

    page: InboxPage
    # Removed: their bytes changed on disk (msg ids; None for an unreadable id).
    damaged: list[str | None] = field(default_factory=list)
    # Skipped: rows SQLite cannot read, or could not delete (seqs).
    unreadable: list[int] = field(default_factory=list)
    # Senders told about a damaged message of theirs (push "mail").
    notified: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Notices:
    """What the hub needs to tell a sender about a message it removed."""

    keys: PrivateKeys
    settings: HubSettings
    random: Random


def fetch(
    db: Db,
    node_id: str,
    after: int,
    limit: int,
    max_bytes: int,
    notices: Notices,
    now: int,
) -> Fetched:
    """The next messages of `node_id`'s inbox after cursor `after`, bounded in count and bytes.

    Every envelope is compared with the SHA-256 stored at upload before it
    leaves; one that differs is removed and its sender gets a `relay.expired`
    notice (docs/hub.md, "Corruption"). A row SQLite cannot read is skipped,
    so one damaged row never blocks the rest of the inbox.
    """
    messages: list[InboxMessage] = []
    damaged: list[Damaged] = []
    unreadable: list[int] = []
    total = 0
    more = False
    cursor = after
    while not more:
        want = limit + 1 - len(messages)
        rows, bad = _read_rows(db, node_id, cursor, want)
        unreadable += bad
        if not rows and not bad:
            break
        cursor = max([r[0] for r in rows] + bad)
        for seq, msg_id, sender, env_hash, envelope in rows:
            if not _intact(db, msg_id, env_hash, envelope):
                damaged.append(Damaged(seq, _text(msg_id), _text(sender)))
                continue
            if len(messages) == limit or (messages and total + len(envelope) > max_bytes):
                more = True
                break
            messages.append(InboxMessage(seq=seq, id=msg_id, envelope=bytes(envelope)))
            total += len(envelope)
        if len(rows) + len(bad) < want:
            break
    removed, failed, notified = _remove_damaged(db, node_id, damaged, notices, now)
    skipped = sorted(unreadable + failed)
    for seq in skipped:
        if (sender := _give_up(db, notices, seq, now)) is not None:
            notified.add(sender)
    nxt = messages[-1].seq if messages else after
    page = InboxPage(messages=messages, next=nxt, more=more)
    return Fetched(page, removed, skipped, notified)


def _give_up(db: Db, notices: Notices, seq: int, now: int) -> str | None:
    """A row that cannot be read or deleted will never be delivered: tell its sender, once.

    Possible when the row's routing fields still read (the damage is in the
    envelope); the metadata log's `expired` mark says the sender was told.
    Returns the sender told, if one was.
    """
    try:
        row = db.execute(
            "SELECT q.msg_id, q.sender, q.recipient FROM queue q JOIN relay_log l "
            "ON l.msg_id = q.msg_id WHERE q.seq = ? AND l.acked IS NULL AND l.expired IS NULL",
            (seq,),
        ).fetchone()
        if row is None:
            return None
        msg_id, sender, recipient = (_text(v) for v in row)
        if msg_id is None or sender is None or recipient is None:
            return None
        with write(db, durable=True):
            db.execute("UPDATE relay_log SET expired = ? WHERE msg_id = ?", (now, msg_id))
            told = _notify(db, notices, msg_id, sender, recipient, now)
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        return None
    log.error("relay.unreadable_given_up", msg_id=msg_id, sender=sender, notified=told)
    return sender if told else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _read_rows(db: Db, node_id: str, after: int, n: int) -> tuple[list[tuple[Any, ...]], list[int]]:
    """Up to `n` rows of the inbox after `after`, and the seqs of rows that cannot be read.

    One query as long as the file is sound; when it is not, the seqs alone
    (from the inbox index) and then each row by itself, so the damage costs
    only the rows it is in.
    """
    try:
        cur = db.execute(
            f"{_ROW} WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT ?", (node_id, after, n)
        )
        return [tuple(r) for r in cur.fetchall()], []
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
    rows: list[tuple[Any, ...]] = []
    bad: list[int] = []
    for seq in _seqs(db, node_id, after, n):
        try:
            row = db.execute(f"{_ROW} WHERE seq = ?", (seq,)).fetchone()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            bad.append(seq)
            continue
        if row is not None:
            rows.append(tuple(row))
    return rows, bad


def _seqs(db: Db, node_id: str, after: int, n: int) -> list[int]:
    """The next `n` seqs of the inbox: from its index, else from the table itself."""
    sql = "SELECT seq FROM queue {} WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT ?"
    try:
        cur = db.execute(sql.format("INDEXED BY queue_inbox"), (node_id, after, n))
        return [int(r[0]) for r in cur.fetchall()]
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
    cur = db.execute(sql.format("NOT INDEXED"), (node_id, after, n))
    return [int(r[0]) for r in cur.fetchall()]


def _intact(db: Db, msg_id: object, env_hash: object, envelope: object) -> bool:
    """Whether the envelope still is what was uploaded (the SHA-256 stored with it)."""
    if not isinstance(msg_id, str) or not isinstance(envelope, bytes):
        return False
    digest = hashlib.sha256(envelope).digest()
    if isinstance(env_hash, bytes) and digest == env_hash:
        return True
    # The stored hash may be what changed: the metadata log holds a second copy.
    try:
        logged = db.execute("SELECT env_hash FROM relay_log WHERE msg_id = ?", (msg_id,)).fetchone()
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        return False
    return logged is not None and logged[0] == digest


def _remove_damaged(
    db: Db,
    node_id: str,
    damaged: list[Damaged],
    notices: Notices,
    now: int,
) -> tuple[list[str | None], list[int], set[str]]:
    """Delete damaged rows and tell their senders, one durable transaction each.

    Returns the ids removed, the seqs that could not be deleted (skipped like
    unreadable rows) and the senders told. The message is marked in the
    metadata log as left undelivered (`expired`), like an expired one.
    """
    removed: list[str | None] = []
    failed: list[int] = []
    notified: set[str] = set()
    for item in damaged:
        told = False
        try:
            with write(db, durable=True):
                gone = db.execute(
                    "DELETE FROM queue WHERE seq = ? AND recipient = ? RETURNING seq",
                    (item.seq, node_id),
                ).fetchone()
                if gone is None:
                    continue
                if item.msg_id is not None:
                    db.execute(
                        "UPDATE relay_log SET expired = ? WHERE msg_id = ?", (now, item.msg_id)
                    )
                if item.msg_id is not None and item.sender is not None:
                    told = _notify(db, notices, item.msg_id, item.sender, node_id, now)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            failed.append(item.seq)
            continue
        log.error(
            "relay.damaged",
            msg_id=item.msg_id,
            sender=item.sender,
            recipient=node_id,
            notified=told,
        )
        removed.append(item.msg_id)
        if told and item.sender is not None:
            notified.add(item.sender)
    return removed, failed, notified


def has_mail(db: Db, node_id: str) -> bool:
    return (
        db.execute("SELECT 1 FROM queue WHERE recipient = ? LIMIT 1", (node_id,)).fetchone()
        is not None
    )


@dataclass(frozen=True)
class Acked:
    deleted: int
    # Acknowledged ids whose row could not be deleted (a damaged page or index).
    failed: int = 0


def ack(db: Db, node_id: str, ids: list[str], now: int) -> Acked:
    """Delete acknowledged messages of this node's own inbox; say how many.

    All in one statement per 500 ids while the file is sound. When damage
    makes that fail, each id is deleted by itself, so one unreadable row
    never keeps the others in the queue (docs/hub.md, "Corruption").
    """
    if not ids:
        return Acked(0)
    try:
        return Acked(_delete_acked(db, node_id, ids, now, log_acks=True))
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
    deleted = failed = 0
    for msg_id in dict.fromkeys(ids):
        try:
            deleted += _delete_acked(db, node_id, [msg_id], now, log_acks=True)
            continue
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
        try:
            # The metadata log may be what is damaged: the queue row goes all the same.
            deleted += _delete_acked(db, node_id, [msg_id], now, log_acks=False)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            failed += 1
    return Acked(deleted, failed)


def ack_delete_sql(n: int, engine: str = SQLITE) -> str:
    """The DELETE of `n` acknowledged ids (parameters: the ids, then the recipient).

    By message id (its unique index), the recipient checked on each row found.
    The `+` keeps SQLite from planning on the inbox index `(recipient, seq)`,
    which it prefers for a long IN list and which scans the recipient's whole
    backlog (issue 11: acking 100 took 37 ms at 50 000 queued, 5 ms by id).
    PostgreSQL has no such hint and needs none: its planner takes the id index.
    """
    marks = ",".join("?" * n)
    hint = "+" if engine == SQLITE else ""
    return f"DELETE FROM queue WHERE msg_id IN ({marks}) AND {hint}recipient = ? RETURNING msg_id"  # noqa: S608 -- only placeholders are interpolated


def _delete_acked(db: Db, node_id: str, ids: list[str], now: int, *, log_acks: bool) -> int:
    deleted = 0
    # An ack lost to a power cut only means the message is delivered again,
    # which the recipient drops by id, so this commit skips the fsync.
    with write(db, durable=False):
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cur = db.execute(ack_delete_sql(len(chunk), db.engine), [*chunk, node_id])
            gone = [r[0] for r in cur.fetchall()]
            deleted += len(gone)
            if log_acks and gone:
                db.execute(
                    f"UPDATE relay_log SET acked = ? WHERE msg_id IN ({','.join('?' * len(gone))})",  # noqa: S608 -- only placeholders are interpolated
                    [now, *gone],
                )
    return deleted


def expire(
    db: Db,
    keys: PrivateKeys,
    settings: HubSettings,
    now: int,
    random: Random,
) -> set[str]:
    """Remove expired messages and tell each sender; return the senders notified.

    A notice is itself a queued message from `hub`; when a notice expires, no
    further notice is made. A revoked or vanished sender gets none. When
    damage makes the one statement fail, each expired row goes by itself, and
    one that cannot be deleted stays behind (its sender is told, if its
    routing fields read), so the others still expire.
    """
    notices = Notices(keys, settings, random)
    try:
        return _expire_all(db, notices, now)
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
    notified: set[str] = set()
    seqs = db.execute(
        "SELECT seq FROM queue INDEXED BY queue_expiry WHERE expires <= ?", (now,)
    ).fetchall()
    for (seq,) in seqs:
        try:
            notified |= _expire_all(db, notices, now, seq=seq)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            if (sender := _give_up(db, notices, seq, now)) is not None:
                notified.add(sender)
    return notified


def _expire_all(db: Db, notices: Notices, now: int, seq: int | None = None) -> set[str]:
    """Expire every row past its expiry, or only the row `seq`; return the senders told."""
    with write(db, durable=True):
        expired = db.execute(
            "DELETE FROM queue WHERE expires <= ? AND (CAST(? AS BIGINT) IS NULL OR seq = ?) "
            "RETURNING msg_id, sender, recipient",
            (now, seq, seq),
        ).fetchall()
        if not expired:
            return set()
        db.executemany(
            "UPDATE relay_log SET expired = ? WHERE msg_id = ?", [(now, r[0]) for r in expired]
        )
        notified: set[str] = set()
        for msg_id, sender, recipient in expired:
            if _notify(db, notices, msg_id, sender, recipient, now):
                notified.add(sender)
    return notified


def _notify(
    db: Db,
    notices: Notices,
    msg_id: str,
    sender: str,
    recipient: str,
    now: int,
) -> bool:
    """Queue a `relay.expired` notice about `msg_id` for its sender; whether one was queued.

    Call inside a durable transaction. Notices about notices (sender `hub`)
    are not made, and a revoked or vanished sender gets none.
    """
    if sender == HUB_ID:
        return False
    site = site_store.get_site(db, sender)
    if site is None or site.keys is None or site.status != "active":
        return False
    # Time-ordered like the nodes' message ids, so the queue's id index grows at its end.
    notice_id = time_ordered_id(now * 1000, notices.random.token_bytes(ID_RANDOM_BYTES))
    try:
        inner = InnerMessage(
            msg_id=notice_id,
            sender=HUB_ID,
            recipient=sender,
            created=now,
            expires=now + notices.settings.relay.notice_ttl,
            payload=ExpiryNotice(of_msg_id=msg_id, recipient=recipient, expired=now),
        )
        env = seal(inner, notices.keys, site.keys, ephemeral_secret=notices.random.token_bytes(32))
    except ProtocolError as exc:
        # One sender whose notice cannot be made (an unusable key, a stored id
        # the protocol refuses) must not keep other messages from expiring or
        # being removed: that message goes, without a notice.
        log.warning("relay.notice_skipped", sender=sender, error=type(exc).__name__)
        return False
    blob = env.encode()
    db.execute(
        "INSERT INTO queue (msg_id, sender, recipient, expires, received, env_hash, "
        "envelope) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (notice_id, HUB_ID, sender, env.expires, now, hashlib.sha256(blob).digest(), blob),
    )
    add_usage(db, HUB_ID, len(blob))
    db.notify("mail", [sender])
    return True


def prune_log(db: Db, settings: HubSettings, now: int) -> int:
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


def queue_stats(db: Db, now: int) -> QueueStats:
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
