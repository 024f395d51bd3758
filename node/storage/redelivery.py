"""What happens when a message this office sent expired before it was delivered.

Two ways to learn it, one outcome: the hub's `relay.expired` notice (the
recipient did not fetch it within the message's lifetime, or the hub found
its stored copy damaged and removed it: docs/hub.md, "Corruption"), or the sync worker
finding an outbox message past its expiry before the hub ever took it (the hub
was unreachable for that long; it would refuse the envelope as expired).

* `referral.offer`: the referral becomes `expired` (the offer never arrived;
  nothing to delete at the recipient).
* `referral.withdraw`, `referral.reply`, `referral.status` (including the
  `withdrawal_confirmed` that answers a withdrawal): sealed again from the
  payload kept in `sent_log`, with a new message id and a new expiry, and
  recorded on the referral (history event `resend`). A withdrawal above all
  must arrive: the recipient has to delete the client's data. The payload is
  kept, rather than rebuilt from the referral's state, because the state
  moves on and a status date or a decline note is not part of it.
* `referral.erase`: sealed again like a withdrawal until the deletion receipt
  arrives (node/storage/erasure.py).
* `erasure.receipt`: signed and sealed again from `erasure_requests`.
* `receipt`: not re-sent; the reply proves delivery just as well.

Not re-sent when it no longer matters: a withdrawal the recipient already
confirmed, or an answer to a referral its sender has since withdrawn. If the
recipient is no longer an active office the message is marked `failed` (shown
in the status views); a withdrawal is then tried again by the housekeeping
round like any withdrawal not yet sealed. If the node cannot seal at all right
now (no usable directory) `NotEnrolled` propagates and the caller retries later.
Rejected alternative: re-sealing the old envelope's contents with only a new
expiry; the id is part of the signed inner message, and a fresh id keeps
"drop duplicates by id" at the recipient correct.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from node.domain import referral_states as states
from node.domain.delivery import Delivery, DeliveryEvent, may_expire
from node.domain.referral_states import IN, OUT, Event
from node.errors import UnknownRecipient
from node.storage import sent_log
from node.storage.context import StoreContext
from node.storage.erasure import receipt_payload
from node.storage.network import RESENDABLE
from node.storage.referrals import Referral, Referrals
from protocol import codes
from protocol.errors import ProtocolError
from protocol.payloads import (
    ErasureReceipt,
    Payload,
    ReferralErase,
    ReferralOffer,
    ReferralStatus,
    ReferralWithdraw,
    decode_payload,
)

log = structlog.get_logger()


class Redelivery:
    def __init__(self, ctx: StoreContext, referrals: Referrals) -> None:
        self.ctx = ctx
        self.referrals = referrals

    def expired(self, msg_id: str) -> str | None:
        """Handle an undelivered, expired message we sent, in the caller's transaction.

        Returns a refusal reason for an id we never sent, else None. Raises
        NotEnrolled when a re-send cannot be sealed now (retry later).
        """
        sent = self.ctx.one("SELECT * FROM sent_log WHERE msg_id = ?", (msg_id,))
        if sent is None:
            return "unknown-message"
        if not may_expire(Delivery(sent["status"])):
            return None  # told twice (a notice after the local expiry, a duplicate)
        kind, referral_id = sent["type"], sent["referral_id"]
        if kind == ErasureReceipt.TYPE:
            self._receipt_expired(sent)
            return None
        direction = (
            OUT if kind in (ReferralOffer.TYPE, ReferralWithdraw.TYPE, ReferralErase.TYPE) else IN
        )
        ref = self.referrals.find(direction, referral_id) if referral_id else None
        if kind == ReferralOffer.TYPE:
            self._mark(msg_id, DeliveryEvent.EXPIRED)
            if ref is not None and states.allows(OUT, ref.state, Event.EXPIRE):
                self.referrals.transition(ref, Event.EXPIRE)
            return None
        payload = self._payload(sent, ref)
        if (
            kind not in RESENDABLE
            or payload is None
            or ref is None
            or not self._wanted(ref, payload)
        ):
            self._mark(msg_id, DeliveryEvent.EXPIRED)
            log.info("outbox.expired", msg_id=msg_id, type=kind)
            return None
        try:
            new_id = self.referrals.network.enqueue(sent["recipient"], payload, referral_id)
        except UnknownRecipient:
            self._mark(msg_id, DeliveryEvent.RESEND_FAILED)
            log.warning("outbox.resend_failed", msg_id=msg_id, type=kind, error="unknown-recipient")
            return None
        sent_log.advance(
            self.ctx, msg_id, DeliveryEvent.RESENT, resent_as=new_id, drop_payload=True
        )
        self.referrals.record(ref, Event.RESEND, reason=kind, msg_id=new_id)
        log.info("outbox.resent", msg_id=msg_id, resent_as=new_id, type=kind)
        return None

    def _receipt_expired(self, sent: dict[str, Any]) -> None:
        """A deletion receipt expired undelivered: sign and seal it again from
        `erasure_requests` (the sender waits for it, node/storage/erasure.py)."""
        msg_id, referral_id = sent["msg_id"], sent["referral_id"]
        payload = receipt_payload(self.ctx, self.referrals.network, referral_id)
        if payload is None:
            self._mark(msg_id, DeliveryEvent.EXPIRED)
            return
        try:
            new_id = self.referrals.network.enqueue(sent["recipient"], payload, referral_id)
        except UnknownRecipient:
            self._mark(msg_id, DeliveryEvent.RESEND_FAILED)
            return
        sent_log.advance(self.ctx, msg_id, DeliveryEvent.RESENT, resent_as=new_id)
        log.info("outbox.resent", msg_id=msg_id, resent_as=new_id, type=sent["type"])

    def _mark(self, msg_id: str, event: DeliveryEvent) -> None:
        sent_log.advance(self.ctx, msg_id, event, drop_payload=True)

    @staticmethod
    def _payload(sent: dict[str, Any], ref: Referral | None) -> Payload | None:
        text = sent["payload"]
        if not isinstance(text, str):
            if sent["type"] == ReferralWithdraw.TYPE and ref is not None:
                # Sent before payloads were kept: a withdrawal is rebuilt from the
                # referral (its reason, or "other" for an expiry's "unanswered").
                reason = ref.reason if ref.reason in codes.WITHDRAW_REASON else "other"
                return ReferralWithdraw(referral_id=ref.referral_id, reason=str(reason))
            return None
        try:
            return decode_payload(str(sent["type"]), json.loads(text))
        except (ValueError, ProtocolError):
            return None  # written by this node, so only a damaged row gets here

    def _wanted(self, ref: Referral, payload: Payload) -> bool:
        """Whether the other office still needs to hear this message."""
        if isinstance(payload, ReferralWithdraw):
            confirmed = self.ctx.one(
                "SELECT 1 FROM referral_events WHERE referral_id = ? AND direction = ?"
                " AND event = 'withdrawal_confirmed'",
                (ref.referral_id, OUT),
            )
            return confirmed is None
        if isinstance(payload, ReferralErase):
            answered = self.ctx.one(
                "SELECT 1 FROM erasure_notices WHERE referral_id = ? AND receipt_at IS NOT NULL",
                (ref.referral_id,),
            )
            return answered is None
        if isinstance(payload, ReferralStatus) and payload.outcome == "withdrawal_confirmed":
            return True  # the sender waits for the confirmation of the deletion
        # An answer to a referral the sender has withdrawn since tells it nothing.
        return ref.state != "withdrawn"
