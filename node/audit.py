"""The audit log's checks: `mbe-node audit verify|show`, and the signed chain head.

The log is a hash chain (node/storage/audit_chain.py). Editing, reordering,
deleting entries, or removing hashes breaks it where it happened; deleting the
newest entries (and resetting the counter) leaves a shorter chain that is
intact in itself. That is what the hub's copy of the head is for: the node
signs its newest hash with its own key (an `audit-head` document) at start
and every `HEAD_INTERVAL` seconds (node/jobs/audit_head.py) and the hub keeps
the newest one. `audit verify` fetches it back, checks the signature with the
node's own keys and looks for that hash in the local chain; if it is gone, the
newest entries were deleted or rewritten after the head was signed.

Exit codes of `audit verify`: 0 intact (and the hub's head found, or the node
is not enrolled), 1 broken, 2 intact locally but the hub's head could not be
checked (unreachable, none held yet, or it does not verify).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import structlog

from node.clock import Deps
from node.config import NodeSettings, load_keys, load_settings
from node.domain.audit_chain import Verdict
from node.errors import ConfigError
from node.storage.context import iso
from node.storage.store import NodeStore
from node.sync.client import HubClient
from node.sync.errors import SyncError
from node.sync.hub_urls import HubUrls
from node.sync.ports import EnrollmentState
from protocol.documents import AuditHead
from protocol.errors import ProtocolError
from protocol.keys import PrivateKeys, PublicKeys

log = structlog.get_logger()

# How often `mbe-node serve` signs and sends its chain head (seconds).
HEAD_INTERVAL = 600

INTACT, BROKEN, UNCHECKED = 0, 1, 2


@dataclass(frozen=True)
class PreparedHead:
    """What a round of the head job found on the database thread."""

    verdict: Verdict
    enrollment: EnrollmentState | None
    head: AuditHead | None = None
    document: bytes | None = None


def prepare_head(store: NodeStore, keys: PrivateKeys, *, full: bool, force: bool) -> PreparedHead:
    """Check the chain and sign its head for the hub (on the database thread).

    Nothing is signed when the chain is broken (signing would vouch for the
    damage), empty, the node not enrolled, or the hub already has this head
    (unless `force`).
    """
    chain = store.access.chain
    verdict = chain.verify(full=full)
    enrollment = store.network.load_enrollment()
    if not verdict.intact or verdict.head is None or enrollment is None:
        return PreparedHead(verdict, enrollment)
    held = chain.hub_head()
    if not force and held is not None and held.hash == verdict.head.hash:
        return PreparedHead(verdict, enrollment)
    head = AuditHead(enrollment.node_id, verdict.head.hash, store.ctx.now())
    return PreparedHead(verdict, enrollment, head, head.sign(keys))


async def send_head(
    store: NodeStore,
    settings: NodeSettings,
    keys: PrivateKeys,
    deps: Deps,
    *,
    full: bool,
    force: bool,
) -> str:
    """One round: check, sign and send the head; `broken`, `skipped` or `sent`.

    The hub's refusals and an unreachable hub raise `SyncError` (the job logs it).
    """
    prepared = await store.run(prepare_head, store, keys, full=full, force=force)
    verdict = prepared.verdict
    if not verdict.intact:
        log.error("audit.chain_broken", seq=verdict.broken_seq, problem=verdict.problem)
        return "broken"
    if prepared.document is None or prepared.head is None or prepared.enrollment is None:
        return "skipped"
    async with HubClient(
        HubUrls.of(prepared.enrollment),
        keys=keys,
        node_id=prepared.enrollment.node_id,
        request_timeout=settings.sync.request_timeout,
        deps=deps,
    ) as client:
        await client.put_audit_head(prepared.document)
    await store.run(store.access.chain.record_hub_head, prepared.head.at, prepared.head.hash)
    log.info("audit.head_sent", entries=verdict.entries)
    return "sent"


@dataclass(frozen=True)
class HubCheck:
    code: int
    message: str


async def check_hub_head(
    store: NodeStore, enrollment: EnrollmentState, signers: tuple[PublicKeys, ...], timeout: float
) -> HubCheck:
    """Fetch our newest head from the hub and look for its hash in the local chain."""
    try:
        async with HubClient(
            HubUrls.of(enrollment),
            keys=store.ctx.keys,
            node_id=enrollment.node_id,
            request_timeout=timeout,
            deps=store.ctx.deps,
        ) as client:
            data = await client.audit_head()
    except SyncError as exc:
        return HubCheck(
            UNCHECKED, f"hub: the head could not be fetched ({exc}); checked locally only"
        )
    if data is None:
        return HubCheck(
            UNCHECKED, "hub: holds no audit head of this node yet (mbe-node serve sends it)"
        )
    try:
        head = AuditHead.verify(data, signers)
    except ProtocolError:
        return HubCheck(UNCHECKED, "hub: its audit head does not verify with this node's keys")
    if head.node_id != enrollment.node_id:
        return HubCheck(UNCHECKED, "hub: its audit head names another node")
    seq = store.access.chain.seq_of(head.hash)
    if seq is None:
        return HubCheck(
            BROKEN,
            f"BROKEN: the newest entries were deleted or rewritten since {iso(head.at)}"
            " (the head the hub holds, signed then, is not in the log)",
        )
    return HubCheck(INTACT, f"hub: the head signed {iso(head.at)} is entry {seq}")


def _signers(settings: NodeSettings, keys: PrivateKeys) -> tuple[PublicKeys, ...]:
    """Our current public keys, and the previous ones while a rotation's overlap lasts."""
    if settings.previous_key_path.exists():
        return (keys.public, load_keys(settings.previous_key_path).public)
    return (keys.public,)


def _open(data_dir: Path) -> tuple[NodeSettings, NodeStore]:
    settings = load_settings(data_dir)
    keys = load_keys(settings.key_path)
    if not settings.db_path.exists():
        raise ConfigError(f"{settings.db_path} not found (run mbe-node init)")
    store = NodeStore.open(
        settings.db_path, keys, Deps.system(), message_ttl=settings.sync.message_ttl
    )
    return settings, store


def cmd_audit_verify(args: argparse.Namespace, out: TextIO) -> int:
    settings, store = _open(Path(args.dir))
    try:
        verdict = store.access.chain.verify(full=True)
        if not verdict.intact:
            out.write(f"Audit log: BROKEN at entry {verdict.broken_seq}: {verdict.reason}\n")
            return BROKEN
        out.write(f"Audit log: {verdict.describe()}\n")
        enrollment = store.network.load_enrollment()
        if enrollment is None:
            out.write("hub: not enrolled, no head to compare with\n")
            return INTACT
        signers = _signers(settings, store.ctx.keys)
        check = asyncio.run(
            check_hub_head(store, enrollment, signers, settings.sync.request_timeout)
        )
    finally:
        store.close()
    out.write(check.message + "\n")
    return check.code


def cmd_audit_show(args: argparse.Namespace, out: TextIO) -> int:
    _settings, store = _open(Path(args.dir))
    try:
        entries = store.access.chain.newest(case_id=args.case, limit=args.limit)
    finally:
        store.close()
    if not entries:
        out.write("no audit entries\n")
        return 0
    rows = [("SEQ", "AT", "APP", "ACTOR", "ACTION", "CASE", "REFERRAL")]
    for e in entries:
        rows.append(
            (
                str(e["seq"]),
                str(e["at"]),
                str(e["app"]),
                e["actor"] or "-",
                str(e["action"]),
                e["case_id"] or "-",
                e["referral_id"] or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    return 0


def _limit(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= n <= 100_000:
        raise argparse.ArgumentTypeError("the limit must be between 1 and 100000")
    return n


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `audit verify` and `audit show` to the `mbe-node` parser."""
    p = sub.add_parser("audit", help="the tamper-evident audit log")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    t = audit_sub.add_parser(
        "verify", help="check the hash chain, and the head the hub holds (exit 0, 1 or 2)"
    )
    t.add_argument("--dir", required=True)
    t.set_defaults(func=cmd_audit_verify)
    t = audit_sub.add_parser("show", help="print the newest audit entries, oldest first")
    t.add_argument("--dir", required=True)
    t.add_argument("--case", help="only the entries about this case id")
    t.add_argument("--limit", type=_limit, default=50, help="how many (default 50)")
    t.set_defaults(func=cmd_audit_show)
