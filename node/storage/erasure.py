"""Erasing a client's case, and telling every office that received its data.

Both sides of docs/client-rights.md, "Erasure":

* Sending office (`erase_case`): one transaction deletes the case with its
  contacts, agreements, consents and hold, clears the personal fields of its
  referrals (the client values, the notes, free-text reasons, kept message
  payloads), leaves ids, dates and codes for the audit, records the case id in
  `erased_cases` (the API then answers 410), and seals a `referral.erase` to
  every office a referral of the case went to, in any state. An offer the hub
  has not taken yet is dropped from the outbox (the client's data no longer
  leaves the office; the notice still goes). Clearing goes by referral id
  *and* direction: ids are unique per direction only. A notice that
  cannot be sealed now (the office left the directory, no usable directory) is
  kept with no message and sealed by the next housekeeping round
  (`send_pending`); one that expires undelivered is sealed again
  (node/storage/redelivery.py), and a re-send that failed (the office was out
  of the directory) is sealed by housekeeping too: `_live` follows the chain of
  re-sends. Nothing is forgotten: a notice without a
  receipt stays listed, and is shown as overdue after `[referrals]
  answer_within_days`.
* Receiving office (`apply`): each office is its own controller, so it erases
  what it holds only because of the referral. A referral it never accepted
  (open, declined, expired, withdrawn) keeps no client value at all; an open
  one is withdrawn so it can no longer be accepted. Where it accepted and
  opened its own case, that case is its own counselling of the client: the
  fields it received are erased from it (as a withdrawal does) and the case is
  flagged for its counsellor to settle the erasure with the client
  (`erasure_requests`, `settle`). It answers with a deletion receipt signed
  with its own key (protocol/erasure.py) saying what it erased and what it
  keeps. An erasure notice for a referral it never received is answered too
  (nothing held), and the offer, should it still arrive from that office, is
  refused. A notice is refused from any office but the referral's sender,
  also for an id this office knows only as one it sent.
* Sending office again (`apply`): the receipt is checked against the
  recipient's key from the directory and kept with the notice.

Erased values leave no trace: the connection runs with `secure_delete`, and
the caller checkpoints the WAL after the commit (`scrub`). Statistics already
submitted are not revised by an erasure (node/stats/erasure.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from node.domain import referral_states as states
from node.domain.delivery import Delivery, DeliveryEvent
from node.domain.referral_states import IN, OUT, Direction, Event, State
from node.errors import ConflictError, InvalidInput, NotEnrolled, NotFound, UnknownRecipient
from node.storage import sent_log
from node.storage.access import Access
from node.storage.context import StoreContext, dumps, iso, loads_list
from node.storage.db import scrub, transaction
from node.storage.idempotency import IdempotencyKeys
from node.storage.lifecycle import UNANSWERED
from node.storage.network import Network
from node.storage.referrals import Referral, Referrals
from protocol import codes
from protocol.envelope import InnerMessage
from protocol.erasure import DeletionReceipt
from protocol.errors import ProtocolError
from protocol.keys import keys_valid_at
from protocol.payloads import (
    MESSAGE_TYPES,
    ErasureReceipt,
    ReferralErase,
    ReferralOffer,
    ReferralWithdraw,
)

log = structlog.get_logger()

DAY = 86400
ACTION = "case.erase"
# Reasons that are codes, never free text: they stay on an erased case's
# referrals and their history. Any other reason (the free text of an
# unsuccessful completion) is cleared with the client's data.
CODE_REASONS = (
    codes.DECLINE_REASON
    | codes.WITHDRAW_REASON
    | codes.ERASURE_REASON
    | MESSAGE_TYPES
    | {UNANSWERED}
)
# How a flagged case was settled: the counsellor agreed with the client that
# the office keeps its own case (`settle`), or the case was erased
# (`erase_case` settles it so).
KEPT = "case_kept"
# Shown in a settled request where nothing was kept (no own case).
NOTHING_KEPT = "nothing_kept"
# The text that replaces a free-text reason in a kept message payload, so the
# message can still be sealed again (an unsuccessful completion needs one).
ERASED_TEXT = "(gelöscht)"
# The messages an office seals about a referral it sent; every other message
# about a referral id (reply, status, receipts) is about one it received.
# Referral ids are unique per direction only (the sender picks them), so what
# is cleared for one direction must not touch the other.
SENT_FOR_OUT = (ReferralOffer.TYPE, ReferralWithdraw.TYPE, ReferralErase.TYPE)
# How many re-sends of one message are followed (sent_log.resent_as).
_CHAIN_LIMIT = 100


@dataclass(frozen=True)
class Notice:
    """One office told of an erasure (sending side)."""

    referral_id: str
    peer: str
    sealed: bool


@dataclass(frozen=True)
class ErasureResult:
    case_id: str
    reason: str
    erased: int
    notices: tuple[Notice, ...]

    def view(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "reason": self.reason,
            "erased": iso(self.erased),
            "notices": [
                {"referral_id": n.referral_id, "peer": n.peer, "sealed": n.sealed}
                for n in self.notices
            ],
        }


def _json_list(text: str | None) -> list[str]:
    return [str(v) for v in loads_list(text)]


def _marks(items: Sequence[str]) -> str:
    return ", ".join("?" for _ in items)


def receipt_payload(ctx: StoreContext, network: Network, referral_id: str) -> ErasureReceipt | None:
    """The signed receipt this office owes for an erasure request it applied, built
    (again) from `erasure_requests`; None when there is no such request."""
    row = ctx.one("SELECT * FROM erasure_requests WHERE referral_id = ?", (referral_id,))
    if row is None:
        return None
    receipt = DeletionReceipt(
        referral_id=referral_id,
        office=network.own_id(),
        to=row["peer"],
        erased=tuple(_json_list(row["erased"])),
        kept=tuple(_json_list(row["kept"])),
        flagged=row["case_id"] is not None,
        at=int(row["received"]),
    )
    return ErasureReceipt(referral_id=referral_id, document=receipt.sign(ctx.keys))


class Erasure:
    def __init__(
        self,
        ctx: StoreContext,
        referrals: Referrals,
        access: Access,
        idempotency: IdempotencyKeys | None = None,
    ) -> None:
        self.ctx = ctx
        self.referrals = referrals
        self.network = referrals.network
        self.cases = referrals.cases
        self.access = access
        self.idempotency = idempotency or IdempotencyKeys(ctx)

    # ------------------------------------------------------ the sending office

    def erase_case(
        self, case_id: str, reason: str, *, app: str, actor: str | None = None
    ) -> ErasureResult:
        """Erase a case and queue the erasure notices, in one transaction (the
        caller's, if it has one); audited as `case.erase`.

        NotFound for an unknown case, Gone for one already erased, ConflictError
        for a case on hold (the message names the hold's reason code).
        """
        if reason not in codes.ERASURE_REASON:
            raise InvalidInput("erase.reason: not a known code")
        with transaction(self.ctx.db):
            self.cases.row(case_id)
            hold = self.ctx.one("SELECT reason FROM retention_holds WHERE case_id = ?", (case_id,))
            if hold is not None:
                raise ConflictError(
                    f"case {case_id} is on hold (reason {hold['reason']}): release the hold"
                    " before erasing it"
                )
            now = self.ctx.now()
            rows = self.ctx.all(
                "SELECT * FROM referrals WHERE case_id = ? ORDER BY created, id", (case_id,)
            )
            for row in rows:
                if row["direction"] == OUT:
                    self._drop_unsent_offer(Referral.from_row(row), row["offer_msg_id"])
            # Read again: dropping an unsent offer expired its referral.
            refs = [self.referrals.get(Direction(r["direction"]), r["id"]) for r in rows]
            self._clear_referrals([(r.referral_id, r.direction) for r in refs])
            self.ctx.run("DELETE FROM cases WHERE id = ?", (case_id,))
            # Answers kept for retried requests may hold the case's values.
            self.idempotency.forget_case(case_id)
            self.ctx.run(
                "INSERT INTO erased_cases (case_id, reason, erased) VALUES (?, ?, ?)",
                (case_id, reason, now),
            )
            notices = tuple(self._notify(ref, reason, now) for ref in refs if ref.direction == OUT)
            # A case flagged by another office's erasure notice is settled by erasing it.
            self.ctx.run(
                "UPDATE erasure_requests SET settled = ?, settlement = 'case_erased'"
                " WHERE case_id = ? AND settled IS NULL",
                (now, case_id),
            )
            self.audit(app, actor, ACTION, case_id, None)
        scrub(self.ctx.db)  # a no-op inside a caller's transaction: the caller scrubs
        log.info("case.erased", case_id=case_id, reason=reason, notices=len(notices))
        return ErasureResult(case_id=case_id, reason=reason, erased=now, notices=notices)

    def audit(
        self,
        app: str,
        actor: str | None,
        action: str,
        case_id: str | None,
        referral_id: str | None,
    ) -> None:
        """One audit row in the caller's transaction, with the acting staff member."""
        self.access.audit(app, action, case_id=case_id, referral_id=referral_id, actor=actor)

    def _drop_unsent_offer(self, ref: Referral, offer_msg_id: str) -> None:
        """An offer the hub has not taken yet never leaves the office after the
        erasure: it is dropped from the outbox, its delivery recorded as expired
        and the referral expires as an undelivered offer does. (The erasure
        notice still goes, and is answered "nothing held".) Should the sync
        worker be uploading it at this very moment, the notice follows it."""
        if not self.ctx.run("DELETE FROM outbox WHERE msg_id = ?", (offer_msg_id,)):
            return
        sent_log.advance(self.ctx, offer_msg_id, DeliveryEvent.EXPIRED, drop_payload=True)
        if states.allows(OUT, ref.state, Event.EXPIRE):
            self.referrals.transition(ref, Event.EXPIRE)

    def _clear_referrals(self, refs: Sequence[tuple[str, Direction]]) -> None:
        """Clear every personal value the given referrals hold (each an id and its
        direction); ids, dates, states, field names and code reasons stay."""
        allowed = sorted(CODE_REASONS)
        codes_marks = _marks(allowed)
        out_marks = _marks(SENT_FOR_OUT)
        for referral_id, direction in refs:
            # Only placeholders are put into the texts; the values are bound.
            self.ctx.run(
                "UPDATE referrals SET client = NULL, note = NULL, reply_note = NULL,"  # noqa: S608
                f" reason = CASE WHEN reason IN ({codes_marks}) THEN reason ELSE NULL END"
                " WHERE id = ? AND direction = ?",
                (*allowed, referral_id, direction),
            )
            self.ctx.run(
                "UPDATE referral_events SET"  # noqa: S608
                f" reason = CASE WHEN reason IN ({codes_marks}) THEN reason ELSE NULL END"
                " WHERE referral_id = ? AND direction = ?",
                (*allowed, referral_id, direction),
            )
            kept = self.ctx.all(
                "SELECT msg_id, payload FROM sent_log"  # noqa: S608
                " WHERE payload IS NOT NULL AND referral_id = ?"
                f" AND (type IN ({out_marks})) = ?",
                (referral_id, *SENT_FOR_OUT, direction == OUT),
            )
            for row in kept:
                payload = json.loads(row["payload"])
                cleaned = {k: v for k, v in payload.items() if k != "note"}
                if "reason" in cleaned and cleaned["reason"] not in CODE_REASONS:
                    cleaned["reason"] = ERASED_TEXT
                if cleaned != payload:
                    self.ctx.run(
                        "UPDATE sent_log SET payload = ? WHERE msg_id = ?",
                        (dumps(cleaned), row["msg_id"]),
                    )

    def _seal_notice(self, peer: str, referral_id: str, reason: str) -> str | None:
        try:
            return self.network.enqueue(peer, ReferralErase(referral_id, reason), referral_id)
        except (UnknownRecipient, NotEnrolled) as exc:
            log.warning("erasure.notice_not_sealed", referral_id=referral_id, error=exc.kind)
            return None

    def _notify(self, ref: Referral, reason: str, now: int) -> Notice:
        msg_id = self._seal_notice(ref.peer, ref.referral_id, reason)
        self.ctx.run(
            "INSERT OR IGNORE INTO erasure_notices"
            " (referral_id, case_id, peer, reason, decided, msg_id) VALUES (?, ?, ?, ?, ?, ?)",
            (ref.referral_id, ref.case_id, ref.peer, reason, now, msg_id),
        )
        self.referrals.record(ref, Event.ERASURE_REQUESTED, reason=reason, msg_id=msg_id)
        return Notice(ref.referral_id, ref.peer, msg_id is not None)

    def _live(self, msg_id: str | None) -> dict[str, Any] | None:
        """The message that carries a notice now: a notice that expired undelivered
        was sealed again (node/storage/redelivery.py), and the re-send may have
        been re-sent or replaced in turn (`sent_log.resent_as`)."""
        row = None
        for _ in range(_CHAIN_LIMIT):
            if msg_id is None:
                break
            row = self.ctx.one(
                "SELECT msg_id, status, resent_as FROM sent_log WHERE msg_id = ?", (msg_id,)
            )
            if row is None or row["status"] != Delivery.RESENT or not row["resent_as"]:
                break
            msg_id = row["resent_as"]
        return row

    def send_pending(self) -> list[str]:
        """Seal the notices that could not be sealed when the case was erased, and
        those whose message (or its latest re-send) expired undelivered and could
        not be sealed again ('failed'); the failed message is marked replaced."""
        rows = self.ctx.all(
            "SELECT referral_id, peer, reason, msg_id FROM erasure_notices"
            " WHERE receipt_at IS NULL ORDER BY decided, referral_id"
        )
        sent = []
        for row in rows:
            live = self._live(row["msg_id"])
            failed = live is not None and live["status"] == Delivery.FAILED
            if row["msg_id"] is not None and not failed:
                continue
            with transaction(self.ctx.db):
                msg_id = self._seal_notice(row["peer"], row["referral_id"], row["reason"])
                if msg_id is None:
                    continue
                if failed and live is not None:
                    sent_log.advance(
                        self.ctx, live["msg_id"], DeliveryEvent.REPLACED, resent_as=msg_id
                    )
                self.ctx.run(
                    "UPDATE erasure_notices SET msg_id = ? WHERE referral_id = ?",
                    (msg_id, row["referral_id"]),
                )
                sent.append(row["referral_id"])
        if sent:
            log.info("erasure.notices_sealed", count=len(sent))
        return sent

    # ------------------------------------------------------- incoming messages

    def apply(self, inner: InnerMessage, now: int) -> str | None:
        """Apply a `referral.erase` or `erasure.receipt` in the caller's transaction;
        a refusal reason, or None when applied."""
        payload = inner.payload
        if isinstance(payload, ReferralErase):
            return self._on_erase(inner, payload, now)
        if isinstance(payload, ErasureReceipt):
            return self._on_receipt(inner, payload, now)
        return f"unexpected-type: {inner.type}"

    def _on_erase(self, inner: InnerMessage, erase: ReferralErase, now: int) -> str | None:
        referral_id = erase.referral_id
        ref = self.referrals.find(IN, referral_id)
        if ref is not None and ref.peer != inner.sender:
            return "sender-mismatch"
        if ref is None and self.referrals.find(OUT, referral_id) is not None:
            # We sent this referral: only we can ask for its erasure, never an
            # office (its recipient or another) that knows the id.
            return "sender-mismatch"
        known = self.ctx.one(
            "SELECT peer FROM erasure_requests WHERE referral_id = ?", (referral_id,)
        )
        if known is not None:
            if known["peer"] == inner.sender:
                self._answer(inner.sender, referral_id)  # the sender asked again: answer again
                return None
            if ref is None:
                return "sender-mismatch"
            # The request came from an office that never sent this referral (and
            # so held nothing); the notice of the office that did sent it counts.
            self.ctx.run("DELETE FROM erasure_requests WHERE referral_id = ?", (referral_id,))
        erased: list[str] = []
        kept: list[str] = []
        flagged_case: str | None = None
        if ref is not None:
            erased = sorted(ref.fields)
            if ref.state == State.RECEIVED:
                self.referrals.transition(ref, Event.WITHDRAWN, reason=erase.reason)
                ref = self.referrals.get(IN, referral_id)
            self.referrals.record(
                ref, Event.ERASURE_REQUESTED, reason=erase.reason, msg_id=inner.msg_id
            )
            self._clear_referrals([(referral_id, IN)])
            own = ref.case_id
            if own is not None and self.ctx.one("SELECT 1 FROM cases WHERE id = ?", (own,)):
                self.cases.erase_fields(own, list(ref.fields))
                kept = ["case"]
                flagged_case = own
        self.ctx.run(
            "INSERT INTO erasure_requests (referral_id, peer, received, case_id, erased, kept,"
            " settled, settlement) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                referral_id,
                inner.sender,
                now,
                flagged_case,
                dumps(erased),
                dumps(kept),
                None if flagged_case else now,
                None if flagged_case else NOTHING_KEPT,
            ),
        )
        self._answer(inner.sender, referral_id)
        log.info(
            "erasure.applied", referral_id=referral_id, known=ref is not None, flagged=bool(kept)
        )
        return None

    def _answer(self, sender: str, referral_id: str) -> None:
        payload = receipt_payload(self.ctx, self.network, referral_id)
        if payload is not None:
            self.network.enqueue(sender, payload, referral_id)

    def _on_receipt(self, inner: InnerMessage, message: ErasureReceipt, now: int) -> str | None:
        row = self.ctx.one(
            "SELECT peer, receipt_at FROM erasure_notices WHERE referral_id = ?",
            (message.referral_id,),
        )
        if row is None:
            return "unknown-referral"
        if row["peer"] != inner.sender:
            return "sender-mismatch"
        if row["receipt_at"] is not None:
            return None  # a second answer (our notice was sealed twice): the first counts
        receipt = self._verified(inner.sender, message)
        if receipt is None:
            return "bad-receipt"
        self.ctx.run(
            "UPDATE erasure_notices SET receipt = ?, receipt_at = ?, erased = ?, kept = ?,"
            " flagged = ? WHERE referral_id = ?",
            (
                message.document,
                now,
                dumps(list(receipt.erased)),
                dumps(list(receipt.kept)),
                int(receipt.flagged),
                message.referral_id,
            ),
        )
        ref = self.referrals.find(OUT, message.referral_id)
        if ref is not None:
            self.referrals.record(ref, Event.ERASURE_CONFIRMED, reason=None, msg_id=inner.msg_id)
        return None

    def _verified(self, sender: str, message: ErasureReceipt) -> DeletionReceipt | None:
        """The receipt, if signed by the sender's key and about this very referral."""
        office = self.network.directory().office(sender)
        if office is None:
            return None
        own = self.network.own_id()
        candidates = keys_valid_at(
            office.keys, office.previous_keys, office.previous_until, self.ctx.now()
        )
        for keys in candidates:
            try:
                receipt = DeletionReceipt.verify(message.document, keys)
            except ProtocolError:
                continue
            if (receipt.referral_id, receipt.office, receipt.to) == (
                message.referral_id,
                sender,
                own,
            ):
                return receipt
            return None
        return None

    def erased_before_arrival(self, referral_id: str, sender: str) -> bool:
        """Whether the sender's erasure notice for this referral came before its offer."""
        row = self.ctx.one(
            "SELECT 1 FROM erasure_requests WHERE referral_id = ? AND peer = ?",
            (referral_id, sender),
        )
        return row is not None

    # ----------------------------------------------------------------- reading

    def notices(self) -> list[dict[str, Any]]:
        """Every erasure notice this office sent, unanswered first, with its receipt."""
        cutoff = self.ctx.now() - self.ctx.answer_within_days * DAY
        rows = self.ctx.all(
            "SELECT n.* FROM erasure_notices n"
            " ORDER BY n.receipt_at IS NOT NULL, n.decided, n.referral_id"
        )
        out = []
        for r in rows:
            answered = r["receipt_at"] is not None
            live = self._live(r["msg_id"])
            out.append(
                {
                    "referral_id": r["referral_id"],
                    "case_id": r["case_id"],
                    "peer": r["peer"],
                    "reason": r["reason"],
                    "decided": iso(r["decided"]),
                    "sealed": r["msg_id"] is not None,
                    "delivery": None if live is None else live["status"],
                    "overdue": not answered and r["decided"] <= cutoff,
                    "receipt": {
                        "received": iso(r["receipt_at"]),
                        "erased": _json_list(r["erased"]),
                        "kept": _json_list(r["kept"]),
                        "flagged": bool(r["flagged"]),
                    }
                    if answered
                    else None,
                }
            )
        return out

    def receipt_document(self, referral_id: str) -> bytes:
        row = self.ctx.one(
            "SELECT receipt FROM erasure_notices WHERE referral_id = ?", (referral_id,)
        )
        if row is None or row["receipt"] is None:
            raise NotFound(f"no deletion receipt for referral {referral_id[:40]}")
        return bytes(row["receipt"])

    def requests(self) -> list[dict[str, Any]]:
        """Every erasure notice this office received, open (flagged cases) first."""
        rows = self.ctx.all(
            "SELECT * FROM erasure_requests ORDER BY settled IS NOT NULL, received, referral_id"
        )
        return [
            {
                "referral_id": r["referral_id"],
                "peer": r["peer"],
                "received": iso(r["received"]),
                "case_id": r["case_id"],
                "erased": _json_list(r["erased"]),
                "kept": _json_list(r["kept"]),
                "settled": iso(r["settled"]),
                "settlement": r["settlement"],
            }
            for r in rows
        ]

    def settle(self, referral_id: str) -> dict[str, Any]:
        """Record that the counsellor settled a flagged case with the client: the
        office keeps its own case. (Erasing the case settles it the other way.)"""
        with transaction(self.ctx.db):
            row = self.ctx.one(
                "SELECT case_id, settled FROM erasure_requests WHERE referral_id = ?",
                (referral_id,),
            )
            if row is None:
                raise NotFound(f"no erasure request for referral {referral_id[:40]}")
            if row["settled"] is not None:
                raise ConflictError(f"the erasure request for referral {referral_id} is settled")
            self.ctx.run(
                "UPDATE erasure_requests SET settled = ?, settlement = ? WHERE referral_id = ?",
                (self.ctx.now(), KEPT, referral_id),
            )
        return next(r for r in self.requests() if r["referral_id"] == referral_id)

    def counts(self) -> dict[str, int]:
        """Figures for the status views: notices waiting for a receipt (and of them
        overdue), flagged cases not yet settled."""
        cutoff = self.ctx.now() - self.ctx.answer_within_days * DAY
        row = self.ctx.one(
            "SELECT COUNT(*) AS waiting, COALESCE(SUM(decided <= ?), 0) AS overdue"
            " FROM erasure_notices WHERE receipt_at IS NULL",
            (cutoff,),
        )
        flagged = self.ctx.one("SELECT COUNT(*) AS n FROM erasure_requests WHERE settled IS NULL")
        return {
            "waiting": int(row["waiting"]) if row else 0,
            "overdue": int(row["overdue"]) if row else 0,
            "flagged": int(flagged["n"]) if flagged else 0,
        }
