"""The hash chain of the audit log: how an entry's hash is made and checked.

Each entry's hash is SHA-256 over a domain tag, the previous entry's hash (the
first entry uses `GENESIS`) and an unambiguous encoding of the entry's fields
(seq, at, app, actor, action, case_id, referral_id): every field carries a type
tag, strings a length prefix, so no two different entries encode alike. Editing
an entry changes its hash; reordering changes the seq it is hashed with;
deleting one leaves a gap in seq (and the next entry's previous hash wrong).

Pure: the storage feeds rows in seq order (node/storage/audit_chain.py).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DOMAIN = b"mbe-sync/audit/v1\x00"
# The "previous hash" of the first entry of a chain.
GENESIS = hashlib.sha256(b"mbe-sync audit log genesis v1").hexdigest()
FIELDS = ("seq", "at", "app", "actor", "action", "case_id", "referral_id")


def _field(value: object) -> bytes:
    if value is None:
        return b"n"
    if isinstance(value, bool):  # not an int here: no column holds one
        raise TypeError("an audit field is never a bool")
    if isinstance(value, int):
        return b"i" + struct.pack(">q", value)
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        return b"s" + struct.pack(">I", len(raw)) + raw
    raise TypeError(f"an audit field is never a {type(value).__name__}")


def entry_hash(previous: str, entry: Mapping[str, Any]) -> str:
    """The hash of `entry` (a row with the FIELDS) chained to `previous` (hex)."""
    h = hashlib.sha256(DOMAIN)
    h.update(_field(previous))
    for name in FIELDS:
        h.update(_field(entry.get(name)))
    return h.hexdigest()


# What is wrong with the first broken entry.
MISSING = "missing"  # a gap in seq: the entry was deleted
MISMATCH = "mismatch"  # the stored hash is not the computed one: edited or reordered
NO_HASH = "no-hash"  # no hash after the chain's start: a hash was removed
BEFORE_START = "before-start"  # an entry older than the chain's recorded start
TRUNCATED = "truncated"  # the log's counter is past the newest entry: newest deleted

PROBLEMS = {
    MISSING: "deleted (gap in the sequence)",
    MISMATCH: "hash mismatch (edited or reordered)",
    NO_HASH: "no hash after the chain's start (hash removed)",
    BEFORE_START: "entry before the chain's recorded start (inserted or start marker changed)",
    TRUNCATED: "the newest entries were deleted (the log's counter is further)",
}


@dataclass(frozen=True)
class Checkpoint:
    """The last entry checked: its seq and hash, and how many entries up to it."""

    seq: int
    hash: str
    count: int


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking the chain (or its part after a checkpoint)."""

    entries: int
    head: Checkpoint | None  # the newest good entry (None: no entry at all)
    broken_seq: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_seq is None

    @property
    def reason(self) -> str:
        """What is wrong with the first broken entry, in words ("" when intact)."""
        return PROBLEMS.get(self.problem or "", "") if not self.intact else ""

    def describe(self) -> str:
        if self.intact:
            return f"intact ({self.entries} entries)"
        return f"broken at entry {self.broken_seq}: {self.reason}"


def verify_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    first_seq: int | None,
    since: Checkpoint | None = None,
    counter: int | None = None,
) -> Verdict:
    """Check `rows` (ordered by seq, each with the FIELDS and `hash`).

    `first_seq` is the seq the chain started at; `since` continues from an
    entry already checked (then `rows` hold only later entries); `counter` is
    the highest seq ever handed out (SQLite's AUTOINCREMENT counter), which
    exposes deleted newest entries unless it was changed too.
    """
    previous = since.hash if since is not None else GENESIS
    count = since.count if since is not None else 0
    head = since
    expected = since.seq + 1 if since is not None else first_seq
    for row in rows:
        seq = int(row["seq"])
        if expected is None or seq < expected:
            # Entries but no recorded start, or (rows come in seq order) the
            # first entry lies before the start.
            return Verdict(count, head, seq, BEFORE_START)
        if seq > expected:
            return Verdict(count, head, expected, MISSING)
        stored = row["hash"]
        if stored is None:
            return Verdict(count, head, seq, NO_HASH)
        if stored != entry_hash(previous, row):
            return Verdict(count, head, seq, MISMATCH)
        previous = stored
        count += 1
        head = Checkpoint(seq, stored, count)
        expected = seq + 1
    if first_seq is None:
        return Verdict(count, head)
    newest = head.seq if head is not None else first_seq - 1
    if counter is not None and counter > newest:
        return Verdict(count, head, newest + 1, TRUNCATED)
    return Verdict(count, head)
