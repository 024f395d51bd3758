"""The node's sync health: the one source of the figures every status view shows.

`mbe-node status` (English table), GET /api/v1/status (JSON) and the German
status page GET /status all read `read_health`, so they can never disagree.
Only non-personal figures: ids of this node and its hub, times, counts, the
directory version, statistics periods. No case, client or referral id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.domain.delivery import Delivery
from node.domain.retention import DEFAULT_YEARS
from node.storage import sent_log
from node.storage.audit_chain import AuditChain
from node.storage.cases import Cases
from node.storage.context import StoreContext, iso
from node.storage.lifecycle import DAY, PENDING_WITHDRAWAL
from node.storage.network import Network
from node.storage.retention import DUE_WITHIN_DAYS, Retention
from node.storage.stats_ledger import StatsLedger
from node.sync.ports import (
    STATE_CLOCK_OFFSET,
    STATE_HUB_REACHABLE,
    STATE_LAST_ERROR,
    STATE_LAST_SYNC,
    STATE_PUSH_CONNECTED,
    EnrollmentState,
)
from protocol.documents import MAX_DIRECTORY_BYTES, Directory, verify_document
from protocol.encoding import field_int
from protocol.errors import ProtocolError

# An unsent message older than this means the hub has not taken mail for a while.
OUTBOX_STALE = 3600
# A clock this far (seconds) from the hub's is worth a warning; the hub
# refuses requests beyond protocol.requests.DEFAULT_MAX_SKEW (300 s).
CLOCK_WARN_SECONDS = 60
# How many refused messages the status page lists (newest first).
REFUSED_SHOWN = 5
# How many statistics periods the status views list (newest first).
STATS_SHOWN = 6

# Warning codes, in the order the views list them.
NOT_ENROLLED = "not_enrolled"
HUB_UNREACHABLE = "hub_unreachable"
DIRECTORY_MISSING = "directory_missing"
DIRECTORY_EXPIRED = "directory_expired"
OUTBOX_STUCK = "outbox_stuck"
OUTBOX_REJECTED = "outbox_rejected"
WITHDRAWALS_PENDING = "withdrawals_pending"
DELIVERY_FAILED = "delivery_failed"
STATS_REJECTED = "stats_rejected"
CLOCK_SKEW = "clock_skew"
ERASURES_OVERDUE = "erasures_overdue"
ERASURES_FLAGGED = "erasures_flagged"
AUDIT_BROKEN = "audit_broken"
LAST_ERROR = "last_error"


@dataclass(frozen=True)
class StatsLine:
    """The newest revision the node made of one statistics period."""

    period: str
    revision: int
    state: str
    submitted_at: int | None
    # A refused revision whose warning an administrator dismissed (`stats dismiss`).
    dismissed: bool = False


def _flag(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get(value or "")


@dataclass(frozen=True)
class SyncHealth:
    now: int
    enrolled: bool
    node_id: str | None
    # The hub URL in use: the one that answered the running node last, or the
    # first of `hub_urls` before any answer.
    hub_url: str | None
    enrolled_at: int | None
    hub_reachable: bool | None  # None: no sync attempt recorded yet
    push_connected: bool | None
    last_sync: int | None
    last_error: str | None
    outbox_depth: int
    oldest_unsent: int | None
    outbox_rejected: int
    inbox_awaiting: int
    refused_messages: int
    withdrawals_pending: int
    directory_version: int | None
    directory_expires: int | None
    stats: tuple[StatsLine, ...]
    sync_state: tuple[tuple[str, str], ...]
    # Sent messages that expired undelivered (node/storage/redelivery.py): sealed
    # again with a new id, or not (the recipient is no longer an active office).
    messages_resent: int = 0
    delivery_failed: int = 0
    # Retention (node/storage/retention.py): closed cases the retention job erases
    # within the next DUE_WITHIN_DAYS days (or has yet to erase), and due cases
    # kept by a hold. Counts only.
    retention_due: int = 0
    retention_held: int = 0
    # Erasure notices this office sent (node/storage/erasure.py): waiting for the
    # other office's deletion receipt, and of them overdue; and cases flagged by
    # another office's erasure notice that a counsellor has yet to settle.
    # This node's clock minus the hub's, seconds (None: not measured yet).
    clock_offset: int | None = None
    # The newest messages this office refused (time, sender office, reason code):
    # ids and codes only, so the status page can say which were refused.
    refused_recent: tuple[tuple[int, str, str], ...] = ()
    erasures_waiting: int = 0
    erasures_overdue: int = 0
    erasures_flagged: int = 0
    # The audit log's hash chain (node/storage/audit_chain.py): its entries, the
    # first broken entry and what is wrong there (None: intact), and the newest
    # head the hub accepted (its signed time, and when the hub confirmed it).
    audit_entries: int = 0
    audit_broken_seq: int | None = None
    audit_problem: str | None = None
    audit_hub_at: int | None = None
    audit_hub_confirmed: int | None = None
    # Every hub URL, in the administrator's order (the first is preferred).
    hub_urls: tuple[str, ...] = ()

    @property
    def push_live(self) -> bool | None:
        """The push channel as the views show it: a connection flag left from before
        the hub became unreachable is not shown as connected."""
        return False if self.hub_reachable is False else self.push_connected

    @property
    def oldest_unsent_age(self) -> int | None:
        return None if self.oldest_unsent is None else max(0, self.now - self.oldest_unsent)

    @property
    def directory_expired(self) -> bool:
        return self.directory_expires is not None and self.directory_expires <= self.now

    def warnings(self) -> tuple[str, ...]:
        """What needs the administrator's attention, most serious first."""
        broken = (AUDIT_BROKEN,) if self.audit_broken_seq is not None else ()
        if not self.enrolled:
            return (NOT_ENROLLED, *broken)
        found = list(broken)
        if self.hub_reachable is False:
            found.append(HUB_UNREACHABLE)
        if self.directory_version is None:
            found.append(DIRECTORY_MISSING)
        elif self.directory_expired:
            found.append(DIRECTORY_EXPIRED)
        age = self.oldest_unsent_age
        if age is not None and age > OUTBOX_STALE:
            found.append(OUTBOX_STUCK)
        if self.outbox_rejected:
            found.append(OUTBOX_REJECTED)
        if self.withdrawals_pending:
            found.append(WITHDRAWALS_PENDING)
        if self.delivery_failed:
            found.append(DELIVERY_FAILED)
        if any(s.state == "rejected" and not s.dismissed for s in self.stats):
            found.append(STATS_REJECTED)
        if self.erasures_overdue:
            found.append(ERASURES_OVERDUE)
        if self.erasures_flagged:
            found.append(ERASURES_FLAGGED)
        if self.clock_offset is not None and abs(self.clock_offset) > CLOCK_WARN_SECONDS:
            found.insert(len(broken), CLOCK_SKEW)
        if self.last_error and HUB_UNREACHABLE not in found:
            found.append(LAST_ERROR)
        return tuple(found)

    def to_map(self) -> dict[str, Any]:
        """The JSON of GET /api/v1/status (NodeStatus in openapi.yaml)."""
        return {
            "enrolled": self.enrolled,
            "node_id": self.node_id,
            "hub_url": self.hub_url,
            "hub_urls": list(self.hub_urls),
            "enrolled_at": iso(self.enrolled_at),
            "directory_version": self.directory_version,
            "directory_expires": iso(self.directory_expires),
            "hub_reachable": self.hub_reachable,
            "push_connected": self.push_connected,
            "outbox_depth": self.outbox_depth,
            "outbox_rejected": self.outbox_rejected,
            "oldest_unsent": iso(self.oldest_unsent),
            "inbox_depth": self.inbox_awaiting,
            "refused_messages": self.refused_messages,
            "withdrawals_pending": self.withdrawals_pending,
            "messages_resent": self.messages_resent,
            "delivery_failed": self.delivery_failed,
            "retention_due": self.retention_due,
            "retention_held": self.retention_held,
            "erasures_waiting": self.erasures_waiting,
            "erasures_overdue": self.erasures_overdue,
            "erasures_flagged": self.erasures_flagged,
            "audit_entries": self.audit_entries,
            "audit_broken_at": self.audit_broken_seq,
            "audit_hub_confirmed": iso(self.audit_hub_confirmed),
            "last_sync": iso(self.last_sync),
            "last_error": self.last_error,
            "clock_offset": self.clock_offset,
            "warnings": list(self.warnings()),
            "sync_state": dict(self.sync_state),
        }


def _count(ctx: StoreContext, sql: str) -> int:
    row = ctx.one(sql)
    return int(row["n"]) if row else 0


def _directory_expires(network: Network) -> int | None:
    """The held directory's expiry, read even when it has passed (verify() refuses that)."""
    state = network.load_enrollment()
    data = network.directory_bytes()
    if state is None or data is None:
        return None
    try:
        body = verify_document(data, Directory.KIND, state.hub_keys, MAX_DIRECTORY_BYTES)
        return field_int(body, "expires", Directory.KIND)
    except ProtocolError:
        return None


def _stats_lines(ctx: StoreContext) -> tuple[StatsLine, ...]:
    newest: dict[str, StatsLine] = {}
    for sub in StatsLedger(ctx).submissions():  # ordered by period, revision
        newest[sub.period] = StatsLine(
            sub.period, sub.revision, sub.state, sub.submitted_at, sub.dismissed is not None
        )
    lines = sorted(newest.values(), key=lambda s: (s.period[:4], s.period), reverse=True)
    return tuple(lines[:STATS_SHOWN])


def _in_use(enrollment: EnrollmentState | None) -> str | None:
    """The URL the node used last if it is still listed, else the preferred one."""
    if enrollment is None:
        return None
    if enrollment.hub_in_use in enrollment.hub_urls:
        return enrollment.hub_in_use
    return enrollment.hub_url


def _int(state: Mapping[str, str], key: str) -> int | None:
    value = state.get(key)
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def read_health(
    ctx: StoreContext, network: Network, *, retention_years: int = DEFAULT_YEARS
) -> SyncHealth:
    """Every figure of the status views, read in one go from the node database;
    `retention_years` is node.toml's `[retention] years` (for the due counts)."""
    enrollment = network.load_enrollment()
    outbox = ctx.one(
        "SELECT COUNT(*) AS n, MIN(created) AS oldest FROM outbox WHERE rejected IS NULL"
    ) or {"n": 0, "oldest": None}
    state = {r["key"]: r["value"] for r in ctx.all("SELECT key, value FROM sync_state")}
    pending = ctx.one(f"SELECT COUNT(*) AS n FROM referrals r WHERE {PENDING_WITHDRAWAL}")  # noqa: S608 -- a constant
    erasures = ctx.one(
        "SELECT COUNT(*) AS n, COALESCE(SUM(decided <= ?), 0) AS overdue"
        " FROM erasure_notices WHERE receipt_at IS NULL",
        (ctx.now() - ctx.answer_within_days * DAY,),
    ) or {"n": 0, "overdue": 0}
    retention = Retention(ctx, Cases(ctx)).counts(ctx.today(), retention_years, DUE_WITHIN_DAYS)
    audit = AuditChain(ctx).status()
    return SyncHealth(
        now=ctx.now(),
        enrolled=enrollment is not None,
        node_id=enrollment.node_id if enrollment else None,
        hub_url=_in_use(enrollment),
        hub_urls=enrollment.hub_urls if enrollment else (),
        enrolled_at=enrollment.enrolled_at if enrollment else None,
        hub_reachable=_flag(state.get(STATE_HUB_REACHABLE)),
        push_connected=_flag(state.get(STATE_PUSH_CONNECTED)),
        last_sync=_int(state, STATE_LAST_SYNC),
        last_error=state.get(STATE_LAST_ERROR) or None,
        outbox_depth=int(outbox["n"]),
        oldest_unsent=None if outbox["oldest"] is None else int(outbox["oldest"]),
        outbox_rejected=_count(ctx, "SELECT COUNT(*) AS n FROM outbox WHERE rejected IS NOT NULL"),
        inbox_awaiting=_count(
            ctx,
            "SELECT COUNT(*) AS n FROM referrals WHERE direction = 'in' AND state = 'received'",
        ),
        refused_messages=_count(ctx, "SELECT COUNT(*) AS n FROM refused"),
        withdrawals_pending=int(pending["n"]) if pending else 0,
        directory_version=network.directory_version(),
        directory_expires=_directory_expires(network),
        stats=_stats_lines(ctx),
        sync_state=tuple(sorted(state.items())),
        messages_resent=sent_log.count(ctx, Delivery.RESENT),
        delivery_failed=sent_log.count(ctx, Delivery.FAILED),
        retention_due=retention.due,
        retention_held=retention.held,
        clock_offset=_int(state, STATE_CLOCK_OFFSET),
        refused_recent=tuple(
            (int(r["at"]), str(r["sender"]), str(r["reason"]))
            for r in ctx.all(
                "SELECT at, sender, reason FROM refused ORDER BY seq DESC LIMIT ?",
                (REFUSED_SHOWN,),
            )
        ),
        erasures_waiting=int(erasures["n"]),
        erasures_overdue=int(erasures["overdue"]),
        erasures_flagged=_count(
            ctx, "SELECT COUNT(*) AS n FROM erasure_requests WHERE settled IS NULL"
        ),
        audit_entries=audit.verdict.entries,
        audit_broken_seq=audit.verdict.broken_seq,
        audit_problem=audit.verdict.problem,
        audit_hub_at=audit.hub.at if audit.hub is not None else None,
        audit_hub_confirmed=audit.hub.confirmed if audit.hub is not None else None,
    )
