"""What happens to referrals beyond a single action of an app.

* An unanswered referral expires after `[referrals] answer_within_days`. At the
  sending office the expiry seals a `referral.withdraw` (reason `other`) to the
  recipient, so an office that never acted on the client's data deletes it and
  confirms. At the receiving office an offer it never answered expires too, and
  its client data is deleted there, even if the sender can no longer say so
  (revoked, gone, or its withdrawal lost). Rejected alternative: expiring only
  locally at the sender, which would leave the data at an office that never
  used it, for ever.
* Withdrawing a consent withdraws, in the same transaction, every open outgoing
  referral that relied on it (reason `consent_withdrawn`). Completed referrals
  are left alone and reported, so the counsellor can contact the recipient.
* A withdrawal that could not be sealed when it was decided (the recipient left
  the directory, or the directory is unusable until the next refresh) is tried
  again by every housekeeping round; the local state change never waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from node.domain import referral_states as states
from node.domain.consent import ConsentRecord
from node.domain.delivery import DeliveryEvent
from node.domain.referral_states import IN, OUT, Direction, Event, State
from node.errors import NotEnrolled, UnknownRecipient
from node.storage import sent_log
from node.storage.context import StoreContext
from node.storage.db import scrub, transaction
from node.storage.referrals import Referral, Referrals
from protocol import codes
from protocol.payloads import ReferralWithdraw

log = structlog.get_logger()

DAY = 86400
# The reason an expiry for want of an answer records (the hub's notice records none).
UNANSWERED = "unanswered"
# What withdrawing a consent did to a referral that relied on it.
WITHDRAWN = "withdrawn"  # withdrawn, referral.withdraw queued for the recipient
WITHDRAWAL_PENDING = "withdrawal_pending"  # withdrawn, the message is sealed later
CONTACT_RECIPIENT = "contact_recipient"  # completed, left alone: talk to the recipient
# Outgoing referrals whose withdrawal (their own, or the one an expiry sends)
# is decided but not yet sealed: no referral.withdraw in sent_log, or only one
# that expired undelivered and could not be sealed again ('failed', see
# node/storage/redelivery.py).
# (The literals are UNANSWERED and ReferralWithdraw.TYPE; a test keeps them equal.)
PENDING_WITHDRAWAL = (
    "r.direction = 'out'"
    " AND (r.state = 'withdrawn' OR (r.state = 'expired' AND r.reason = 'unanswered'))"
    " AND NOT EXISTS (SELECT 1 FROM sent_log s"
    " WHERE s.referral_id = r.id AND s.type = 'referral.withdraw' AND s.status <> 'failed')"
)


@dataclass(frozen=True)
class AffectedReferral:
    """An outgoing referral a consent withdrawal touched, for the counsellor to see."""

    referral_id: str
    peer: str
    state: str
    action: str

    def view(self) -> dict[str, str]:
        return {
            "id": self.referral_id,
            "peer": self.peer,
            "state": self.state,
            "action": self.action,
        }


@dataclass(frozen=True)
class Housekeeping:
    """What one housekeeping round did (ids only)."""

    expired_out: tuple[str, ...]
    expired_in: tuple[str, ...]
    withdrawals_sent: tuple[str, ...]

    @property
    def queued(self) -> bool:
        """Whether the round put something into the outbox."""
        return bool(self.expired_out or self.withdrawals_sent)


class ReferralLifecycle:
    def __init__(self, ctx: StoreContext, referrals: Referrals) -> None:
        self.ctx = ctx
        self.referrals = referrals

    def _seal_withdraw(self, ref: Referral, reason: str) -> str | None:
        """Queue a referral.withdraw to the recipient; None when it cannot be sealed now."""
        try:
            msg_id = self.referrals.network.enqueue(
                ref.peer,
                ReferralWithdraw(referral_id=ref.referral_id, reason=reason),
                ref.referral_id,
            )
        except (UnknownRecipient, NotEnrolled) as exc:
            log.warning("referral.withdraw_not_sealed", referral_id=ref.referral_id, error=exc.kind)
            return None
        # An earlier withdrawal that expired undelivered is replaced by this one.
        for failed in sent_log.failed_withdrawals(self.ctx, ref.referral_id, ReferralWithdraw.TYPE):
            sent_log.advance(self.ctx, failed, DeliveryEvent.REPLACED, resent_as=msg_id)
        return msg_id

    # ------------------------------------------------------ consent withdrawal

    def withdraw_consent(
        self, consent_id: str, date: str | None = None
    ) -> tuple[ConsentRecord, list[AffectedReferral]]:
        """Withdraw a consent and, in the same transaction, the open referrals relying on it.

        Declined, expired and withdrawn referrals are not listed: the recipient
        deleted what it received when it declined, and the others were already
        withdrawn from it.
        """
        affected: list[AffectedReferral] = []
        with transaction(self.ctx.db):
            consent = self.referrals.consents.withdraw(consent_id, date)
            rows = self.ctx.all(
                "SELECT * FROM referrals WHERE direction = 'out' AND consent_id = ?"
                " ORDER BY created, id",
                (consent_id,),
            )
            for ref in (Referral.from_row(r) for r in rows):
                if ref.state in states.OPEN_OUT:
                    msg_id = self._seal_withdraw(ref, "consent_withdrawn")
                    new = self.referrals.transition(
                        ref, Event.WITHDRAW, reason="consent_withdrawn", msg_id=msg_id
                    )
                    action = WITHDRAWN if msg_id is not None else WITHDRAWAL_PENDING
                    affected.append(AffectedReferral(ref.referral_id, ref.peer, new, action))
                elif ref.state in states.COMPLETED:
                    affected.append(
                        AffectedReferral(ref.referral_id, ref.peer, ref.state, CONTACT_RECIPIENT)
                    )
        if affected:
            log.info(
                "consent.referrals_withdrawn",
                consent_id=consent_id,
                withdrawn=sum(a.action != CONTACT_RECIPIENT for a in affected),
                completed=sum(a.action == CONTACT_RECIPIENT for a in affected),
            )
        return consent, affected

    # ----------------------------------------------------------------- expiry

    def overdue(self, direction: Direction, cutoff: int) -> list[str]:
        """Referrals still waiting for an answer that were created at or before `cutoff`."""
        waiting = states.UNANSWERED_OUT if direction == OUT else (State.RECEIVED,)
        marks = ", ".join("?" for _ in waiting)
        rows = self.ctx.all(
            # Only placeholders are put into the text; the values are bound.
            f"SELECT id FROM referrals WHERE direction = ? AND state IN ({marks})"  # noqa: S608
            " AND created <= ?"
            # The case was erased: its erasure notice withdraws the referral at
            # the recipient (node/storage/erasure.py); no withdrawal follows.
            " AND (direction = 'in' OR id NOT IN (SELECT referral_id FROM erasure_notices))"
            " ORDER BY created, id",
            (direction, *waiting, cutoff),
        )
        return [r["id"] for r in rows]

    def expire_unanswered(self, direction: Direction, referral_id: str) -> bool:
        """Expire one unanswered referral; False when it was answered meanwhile."""
        with transaction(self.ctx.db):
            ref = self.referrals.get(direction, referral_id)
            if not states.allows(direction, ref.state, Event.EXPIRE):
                return False
            msg_id = self._seal_withdraw(ref, "other") if direction == OUT else None
            self.referrals.transition(ref, Event.EXPIRE, reason=UNANSWERED, msg_id=msg_id)
            if direction == IN:
                self.ctx.run(
                    "UPDATE referrals SET client = NULL WHERE id = ? AND direction = 'in'",
                    (referral_id,),
                )
        return True

    def send_pending_withdrawals(self) -> list[str]:
        """Seal the withdrawals that could not be sealed when they were decided."""
        rows = self.ctx.all(
            f"SELECT * FROM referrals r WHERE {PENDING_WITHDRAWAL} ORDER BY r.updated, r.id"  # noqa: S608 -- a constant
        )
        sent = []
        for ref in (Referral.from_row(r) for r in rows):
            reason = ref.reason or "other"
            if reason not in codes.WITHDRAW_REASON:  # e.g. "unanswered" of an expiry
                reason = "other"
            with transaction(self.ctx.db):
                if self._seal_withdraw(ref, reason) is not None:
                    sent.append(ref.referral_id)
        return sent

    def run(self, answer_within_days: int) -> Housekeeping:
        """One round: expire what waited too long, retry unsealed withdrawals."""
        cutoff = self.ctx.now() - answer_within_days * DAY
        expired = {
            d: tuple(r for r in self.overdue(d, cutoff) if self.expire_unanswered(d, r))
            for d in (OUT, IN)
        }
        if expired[IN]:
            scrub(self.ctx.db)  # the deleted client data must not linger in the WAL
        done = Housekeeping(
            expired_out=expired[OUT],
            expired_in=expired[IN],
            withdrawals_sent=tuple(self.send_pending_withdrawals()),
        )
        if done.expired_out or done.expired_in or done.withdrawals_sent:
            log.info(
                "referrals.housekeeping",
                expired_out=len(done.expired_out),
                expired_in=len(done.expired_in),
                withdrawals_sent=len(done.withdrawals_sent),
            )
        return done
