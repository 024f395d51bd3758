"""The audit log as a hash chain: the one writer, the check, the hub's head.

`AuditChain.append` is the only code that inserts into `audit` (app tokens,
API requests, erasure, export: all through `Access.audit`/`audit_many`). It
runs inside the caller's transaction, so an entry and its hash commit with the
change they record. The hash rule is node/domain/audit_chain.py.

Entries written before the chain existed (migration 0008) are chained once,
when the upgraded database is first opened (`upgrade`); from then on the
chain's start is recorded (`audit_chain.first_seq`) and a NULL hash is a break.

Checking a long chain takes a while, so `verify()` continues from the newest
entry it found intact before in this process (kept per connection, in memory,
never in the database a tamperer could edit), unless another connection wrote
to the database since (SQLite's `data_version`: another process, or a
tamperer's tool); `verify(full=True)` starts over. `mbe-node audit verify` and
the head job's first round (and one a day) check in full.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from node.domain.audit_chain import GENESIS, Checkpoint, Verdict, entry_hash, verify_rows
from node.storage.context import StoreContext, iso
from node.storage.db import transaction

# (action, case id, referral id): one entry of a request.
Entry = tuple[str, str | None, str | None]

_COLUMNS = "seq, at, app, actor, action, case_id, referral_id, hash"
# The newest entry found intact, per open connection (see the module docstring).
# With it, SQLite's data_version then: another connection's commit (another
# process, or a tamperer's tool) changes it, and the next check is a full one.
_VERIFIED: weakref.WeakKeyDictionary[sqlite_utils.Database, tuple[Checkpoint, int]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class HubHead:
    """The newest chain head the hub accepted: its signed time, hash, and when."""

    at: int
    hash: str
    confirmed: int


@dataclass(frozen=True)
class AuditStatus:
    """What the status views show of the audit log."""

    verdict: Verdict
    hub: HubHead | None


class AuditChain:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    # ----------------------------------------------------------------- writing

    def append(self, app: str, actor: str | None, entries: Sequence[Entry]) -> None:
        """Write `entries` (one request's, same time) chained to the newest entry.

        In the caller's transaction if there is one. The seq is the one SQLite's
        AUTOINCREMENT counter would give, so deleted newest entries leave a gap.
        """
        if not entries:
            return
        now = self.ctx.now()
        with transaction(self.ctx.db):
            seq = self._counter() + 1
            newest = self.ctx.one("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
            previous = GENESIS if newest is None else (newest["hash"] or GENESIS)
            self.ctx.run(
                "UPDATE audit_chain SET first_seq = ? WHERE id = 1 AND first_seq IS NULL", (seq,)
            )
            values = []
            for action, case_id, referral_id in entries:
                row = {
                    "seq": seq,
                    "at": now,
                    "app": app,
                    "actor": actor,
                    "action": action,
                    "case_id": case_id,
                    "referral_id": referral_id,
                }
                previous = entry_hash(previous, row)
                values.append((*row.values(), previous))
                seq += 1
            self.ctx.db.conn.executemany(
                f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 -- fixed column names
                values,
            )

    def upgrade(self) -> int:
        """Chain the entries written before migration 0008, once; how many were chained."""
        marker = self.ctx.one("SELECT legacy_until FROM audit_chain WHERE id = 1")
        if marker is None or marker["legacy_until"] is None:
            return 0
        with transaction(self.ctx.db):
            previous = GENESIS
            rows = self.ctx.all(
                f"SELECT {_COLUMNS} FROM audit WHERE seq <= ? ORDER BY seq",  # noqa: S608 -- fixed column names
                (marker["legacy_until"],),
            )
            for row in rows:
                previous = entry_hash(previous, row)
                self.ctx.run("UPDATE audit SET hash = ? WHERE seq = ?", (previous, row["seq"]))
            self.ctx.run("UPDATE audit_chain SET legacy_until = NULL WHERE id = 1")
        return len(rows)

    # ---------------------------------------------------------------- checking

    def verify(self, *, full: bool = False) -> Verdict:
        """Check the chain; from the last entry found intact unless `full`."""
        marker = self.ctx.one("SELECT first_seq FROM audit_chain WHERE id = 1")
        first_seq = None if marker is None else marker["first_seq"]
        version = self._data_version()
        cached = None if full else _VERIFIED.get(self.ctx.db)
        since = cached[0] if cached is not None and cached[1] == version else None
        if since is not None:
            row = self.ctx.one("SELECT hash FROM audit WHERE seq = ?", (since.seq,))
            if row is None or row["hash"] != since.hash:
                since = None
        verdict = verify_rows(
            self._rows_after(since.seq if since is not None else None),
            first_seq=first_seq,
            since=since,
            counter=self._counter(),
        )
        if verdict.intact and verdict.head is not None:
            _VERIFIED[self.ctx.db] = (verdict.head, version)
        else:
            _VERIFIED.pop(self.ctx.db, None)
        return verdict

    def _rows_after(self, seq: int | None) -> Iterator[dict[str, Any]]:
        sql = f"SELECT {_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq"  # noqa: S608 -- fixed column names
        yield from self.ctx.db.query(sql, (-1 if seq is None else seq,))

    def _data_version(self) -> int:
        row = self.ctx.db.conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def _counter(self) -> int:
        """The highest seq ever handed out (AUTOINCREMENT), or the newest seq."""
        row = self.ctx.one(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0),"
            " COALESCE((SELECT MAX(seq) FROM audit), 0)) AS n"
        )
        return int(row["n"]) if row is not None else 0

    def seq_of(self, hash_: str) -> int | None:
        """The seq of the entry with this hash, or None."""
        row = self.ctx.one("SELECT seq FROM audit WHERE hash = ? LIMIT 1", (hash_,))
        return None if row is None else int(row["seq"])

    def status(self) -> AuditStatus:
        """The chain's state (checked from the last intact entry on) and the hub's head."""
        return AuditStatus(self.verify(), self.hub_head())

    # ------------------------------------------------------------- the hub's head

    def record_hub_head(self, at: int, hash_: str) -> None:
        """The hub accepted the head signed at `at` with this hash (now, by our clock)."""
        with transaction(self.ctx.db):
            self.ctx.run(
                "UPDATE audit_chain SET hub_at = ?, hub_hash = ?, hub_confirmed = ? WHERE id = 1",
                (at, hash_, self.ctx.now()),
            )

    def hub_head(self) -> HubHead | None:
        row = self.ctx.one("SELECT hub_at, hub_hash, hub_confirmed FROM audit_chain WHERE id = 1")
        if row is None or row["hub_at"] is None:
            return None
        return HubHead(at=row["hub_at"], hash=row["hub_hash"], confirmed=row["hub_confirmed"])

    # ------------------------------------------------------------------ reading

    def entries(
        self, *, case_id: str | None = None, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Entries oldest first, after seq `after`, at most `limit`; `at` as RFC 3339."""
        rows = self.ctx.all(
            "SELECT seq, at, app, actor, action, case_id, referral_id FROM audit"
            " WHERE seq > ? AND (? IS NULL OR case_id = ?) ORDER BY seq LIMIT ?",
            (after, case_id, case_id, limit),
        )
        return [r | {"at": iso(r["at"])} for r in rows]

    def newest(self, *, case_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest `limit` entries (of one case), oldest first; `at` as RFC 3339."""
        rows = self.ctx.all(
            "SELECT seq, at, app, actor, action, case_id, referral_id FROM audit"
            " WHERE (? IS NULL OR case_id = ?) ORDER BY seq DESC LIMIT ?",
            (case_id, case_id, limit),
        )
        return [r | {"at": iso(r["at"])} for r in reversed(rows)]
