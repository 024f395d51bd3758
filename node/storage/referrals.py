"""Referrals out and in: the consent gate, state transitions, incoming messages.

Every change of state goes through `_transition`, which asks the transition
table in node/domain/referral_states.py, updates the row and appends to `referral_events` in
the caller's transaction. A change that the other office must learn about is
sealed into the outbox in the same transaction (Network.enqueue).

Incoming messages never raise for a domain problem (a reply to a referral we
do not know, a status from the wrong office, a transition the table forbids):
the message is remembered as seen and the anomaly recorded in `refused`, so
the sync worker can acknowledge it and the hub deletes it. Raising would make
the same message come back every cycle for ever.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from node.clock import new_id
from node.domain import referral_states as states
from node.domain.delivery import DeliveryEvent
from node.domain.referral_request import client_values, parse_request
from node.domain.referral_states import IN, OUT, Direction, Event, State
from node.errors import IllegalTransition, InvalidInput, NotFound
from node.storage import sent_log
from node.storage.cases import Cases
from node.storage.consents import Consents
from node.storage.context import StoreContext, dumps, iso, loads_list
from node.storage.db import scrub, transaction
from node.storage.network import Network
from protocol import codes
from protocol.envelope import InnerMessage
from protocol.payloads import (
    CLIENT_FIELDS,
    DATE,
    Receipt,
    ReferralOffer,
    ReferralReply,
    ReferralStatus,
    ReferralWithdraw,
)

log = structlog.get_logger()
_CHUNK = 500


def _chunks(items: list[str]) -> list[list[str]]:
    """SQLite binds at most 999 parameters in older builds: ask in slices."""
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


PROGRESS = ("first_appointment", "completed_successful", "completed_unsuccessful")


@dataclass(frozen=True)
class Referral:
    referral_id: str
    direction: Direction
    peer: str
    case_id: str | None
    target_type: str
    consent_id: str | None
    fields: tuple[str, ...]
    client: dict[str, Any] | None
    state: State
    reason: str | None
    note: str | None
    created: int
    updated: int
    reply_note: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Referral:
        return cls(
            referral_id=row["id"],
            direction=Direction(row["direction"]),
            peer=row["peer"],
            case_id=row["case_id"],
            target_type=row["target_type"],
            consent_id=row["consent_id"],
            fields=tuple(loads_list(row["fields"])),
            client=json.loads(row["client"]) if row["client"] else None,
            state=State(row["state"]),
            reason=row["reason"],
            note=row["note"],
            created=row["created"],
            updated=row["updated"],
            reply_note=row.get("reply_note"),
        )


class Referrals:
    def __init__(
        self, ctx: StoreContext, cases: Cases, consents: Consents, network: Network
    ) -> None:
        self.ctx = ctx
        self.cases = cases
        self.consents = consents
        self.network = network

    # ---------------------------------------------------------------- reading

    def _find(self, direction: Direction, referral_id: str) -> Referral | None:
        row = self.ctx.one(
            "SELECT * FROM referrals WHERE id = ? AND direction = ?", (referral_id, direction)
        )
        return None if row is None else Referral.from_row(row)

    def find(self, direction: Direction, referral_id: str) -> Referral | None:
        return self._find(direction, referral_id)

    def get(self, direction: Direction, referral_id: str) -> Referral:
        found = self._find(direction, referral_id)
        if found is None:
            side = "outgoing" if direction == OUT else "incoming"
            raise NotFound(f"{side} referral {referral_id[:40]} not found")
        return found

    def list_referrals(self, direction: Direction, *, state: str | None = None) -> list[Referral]:
        rows = self.ctx.all(
            "SELECT * FROM referrals WHERE direction = ? AND (? IS NULL OR state = ?)"
            " ORDER BY created DESC, id",
            (direction, state, state),
        )
        return [Referral.from_row(r) for r in rows]

    def history(self, direction: Direction, referral_id: str) -> list[dict[str, Any]]:
        return self.histories(direction, [referral_id]).get(referral_id, [])

    def histories(
        self, direction: Direction, referral_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Each referral's events in order, for many referrals in one query per 500."""
        out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in referral_ids}
        for chunk in _chunks(list(referral_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows = self.ctx.all(
                # Only placeholders are put into the text; the values are bound.
                "SELECT referral_id, event, state, at, reason, date FROM referral_events"  # noqa: S608
                f" WHERE direction = ? AND referral_id IN ({marks}) ORDER BY seq",
                (direction, *chunk),
            )
            for r in rows:
                rid = r.pop("referral_id")
                out[rid].append(r | {"at": iso(r["at"])})
        return out

    def sent_messages(self, referral_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """(type, status) of every message this office sealed about each referral, oldest
        first, for many referrals in one query per 500."""
        out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in referral_ids}
        for chunk in _chunks(list(referral_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows = self.ctx.all(
                "SELECT referral_id, type, status FROM sent_log"  # noqa: S608 -- placeholders only
                f" WHERE referral_id IN ({marks}) ORDER BY created, rowid",
                tuple(chunk),
            )
            for r in rows:
                out[r.pop("referral_id")].append(r)
        return out

    # ------------------------------------------------------------ transitions

    def transition(
        self, ref: Referral, event: Event, *, reason: str | None = None, msg_id: str | None = None
    ) -> State:
        """Move `ref` by `event` and record it, in the caller's transaction (lifecycle.py)."""
        return self._transition(ref, event, reason=reason, msg_id=msg_id)

    def record(
        self, ref: Referral, event: Event, *, reason: str | None, msg_id: str | None
    ) -> None:
        """Record an event that leaves the state as it is (e.g. a re-send), in the
        caller's transaction."""
        self._event(
            ref.referral_id, ref.direction, event, ref.state, self.ctx.now(), reason, msg_id
        )

    def _transition(
        self,
        ref: Referral,
        event: Event,
        *,
        reason: str | None = None,
        msg_id: str | None = None,
        date: str | None = None,
    ) -> State:
        new = states.next_state(ref.direction, ref.state, event)
        now = self.ctx.now()
        self.ctx.run(
            "UPDATE referrals SET state = ?, reason = COALESCE(?, reason), updated = ?"
            " WHERE id = ? AND direction = ?",
            (new, reason, now, ref.referral_id, ref.direction),
        )
        self._event(ref.referral_id, ref.direction, event, new, now, reason, msg_id, date)
        return new

    def _event(
        self,
        referral_id: str,
        direction: Direction,
        event: Event,
        state: State,
        at: int,
        reason: str | None,
        msg_id: str | None,
        date: str | None = None,
    ) -> None:
        self.ctx.run(
            "INSERT INTO referral_events"
            " (referral_id, direction, event, state, at, reason, msg_id, date)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (referral_id, direction, event, state, at, reason, msg_id, date),
        )

    # -------------------------------------------------------- sending office

    def create(self, data: dict[str, Any]) -> Referral:
        """Refer a case to another office, through the consent gate, into the outbox."""
        request = parse_request(data)
        case_id, recipient, fields, note = (
            request.case_id,
            request.recipient,
            list(request.fields),
            request.note,
        )
        with transaction(self.ctx.db):
            case = self.cases.row(case_id)
            if case["closed"] is not None:
                raise InvalidInput(f"case {case_id} is closed")
            consent = self.consents.gate(case_id, recipient, fields, consent_id=request.consent_id)
            self._check_service(recipient, request.target_type)
            client = client_values(case, fields, note)
            referral_id = new_id(self.ctx.deps.random)
            offer = ReferralOffer(
                referral_id=referral_id,
                target_type=request.target_type,
                consent=consent.to_payload(),
                client=client,
            )
            msg_id = self.network.enqueue(recipient, offer, referral_id)
            now = self.ctx.now()
            self.ctx.run(
                "INSERT INTO referrals (id, direction, peer, case_id, target_type, consent_id,"
                " consent, fields, client, note, state, reason, offer_msg_id, created, updated)"
                " VALUES (?, 'out', ?, ?, ?, ?, NULL, ?, NULL, ?, 'sent', NULL, ?, ?, ?)",
                (
                    referral_id,
                    recipient,
                    case_id,
                    request.target_type,
                    consent.consent_id,
                    dumps(fields),
                    note,
                    msg_id,
                    now,
                    now,
                ),
            )
            self._event(referral_id, OUT, Event.SEND, State.SENT, now, None, msg_id)
        log.info("referral.sent", referral_id=referral_id, recipient=recipient)
        return self.get(OUT, referral_id)

    def _check_service(self, recipient: str, target_type: str) -> None:
        """The recipient offers the service referred to ("other" goes to anyone)."""
        office = self.network.directory().office(recipient)
        if office is None or office.status != "active" or target_type == "other":
            return  # an inactive office is refused when the offer is sealed
        if target_type not in office.services:
            raise InvalidInput(
                f"referral.target_type: office {recipient} does not offer {target_type};"
                f" it offers {', '.join(office.services)} (or use other)"
            )

    def withdraw(self, referral_id: str, reason: str) -> Referral:
        if reason not in codes.WITHDRAW_REASON:
            raise InvalidInput("withdraw.reason: not a known code")
        with transaction(self.ctx.db):
            ref = self.get(OUT, referral_id)
            states.next_state(OUT, ref.state, Event.WITHDRAW)  # refuse before sealing anything
            msg_id = self.network.enqueue(
                ref.peer, ReferralWithdraw(referral_id=referral_id, reason=reason), referral_id
            )
            self._transition(ref, Event.WITHDRAW, reason=reason, msg_id=msg_id)
        return self.get(OUT, referral_id)

    # ------------------------------------------------------ receiving office

    def accept(self, referral_id: str, case: dict[str, Any] | None = None) -> Referral:
        """Accept an incoming referral: answer the sender and open a local case from it."""
        extra = dict(case or {})
        with transaction(self.ctx.db):
            ref = self.get(IN, referral_id)
            states.next_state(IN, ref.state, Event.ACCEPT)
            msg_id = self.network.enqueue(
                ref.peer, ReferralReply(referral_id=referral_id, decision="accepted"), referral_id
            )
            data = {k: v for k, v in (ref.client or {}).items() if k in CLIENT_FIELDS}
            data.setdefault("topics", [])
            data.setdefault("languages", [])
            data = (
                data
                | {
                    "pseudonym": extra.pop("pseudonym", f"REF-{referral_id[:8]}"),
                    "case_type": extra.pop("case_type", "short_counselling"),
                }
                | extra
            )
            case_id = self.cases.create(data, origin_referral=referral_id)
            self._transition(ref, Event.ACCEPT, msg_id=msg_id)
            # The data now lives in the case; the referral keeps only field names.
            self.ctx.run(
                "UPDATE referrals SET case_id = ?, client = NULL WHERE id = ? AND direction = 'in'",
                (case_id, referral_id),
            )
        return self.get(IN, referral_id)

    def decline(self, referral_id: str, reason: str, note: str | None = None) -> Referral:
        if reason not in codes.DECLINE_REASON:
            raise InvalidInput("decline.reason: not a known code")
        with transaction(self.ctx.db):
            ref = self.get(IN, referral_id)
            states.next_state(IN, ref.state, Event.DECLINE)
            reply = ReferralReply(
                referral_id=referral_id, decision="declined", reason=reason, note=note
            )
            msg_id = self.network.enqueue(ref.peer, reply, referral_id)
            self._transition(ref, Event.DECLINE, reason=reason, msg_id=msg_id)
            # A declined client's data has no purpose here any more.
            self.ctx.run(
                "UPDATE referrals SET client = NULL WHERE id = ? AND direction = 'in'",
                (referral_id,),
            )
        scrub(self.ctx.db)
        return self.get(IN, referral_id)

    def report(
        self, referral_id: str, outcome: str, date: str | None, reason: str | None
    ) -> Referral:
        if outcome not in PROGRESS:
            raise InvalidInput("status.outcome: not a reportable outcome")
        when = date or self.ctx.today()
        if not codes.is_code(when, DATE):
            raise InvalidInput("status.date: not a date")
        if outcome == "completed_unsuccessful" and not reason:
            raise InvalidInput("status.reason: an unsuccessful completion needs a reason")
        with transaction(self.ctx.db):
            ref = self.get(IN, referral_id)
            states.next_state(IN, ref.state, Event(outcome))
            status = ReferralStatus(
                referral_id=referral_id, outcome=outcome, date=when, reason=reason
            )
            msg_id = self.network.enqueue(ref.peer, status, referral_id)
            self._transition(ref, Event(outcome), reason=reason, msg_id=msg_id, date=when)
        return self.get(IN, referral_id)

    # ------------------------------------------------------- incoming messages

    def apply(self, inner: InnerMessage, now: int) -> str | None:
        """Apply one incoming message; return a refusal reason, or None when applied."""
        payload = inner.payload
        try:
            if isinstance(payload, ReferralOffer):
                return self._on_offer(inner, payload, now)
            if isinstance(payload, ReferralReply):
                return self._on_reply(inner, payload)
            if isinstance(payload, ReferralStatus):
                return self._on_status(inner, payload)
            if isinstance(payload, ReferralWithdraw):
                return self._on_withdraw(inner, payload)
            if isinstance(payload, Receipt):
                return self._on_receipt(inner, payload)
        except IllegalTransition as exc:
            return f"illegal-transition: {exc.state} by {exc.event}"
        return f"unexpected-type: {inner.type}"

    def _outgoing_from(self, inner: InnerMessage, referral_id: str) -> Referral | str:
        ref = self._find(OUT, referral_id)
        if ref is None:
            return "unknown-referral"
        if ref.peer != inner.sender:
            return "sender-mismatch"
        return ref

    def _on_offer(self, inner: InnerMessage, offer: ReferralOffer, now: int) -> str | None:
        if self._find(IN, offer.referral_id) is not None:
            return "duplicate-referral"
        if self.ctx.one(
            "SELECT 1 FROM erasure_requests WHERE referral_id = ? AND peer = ?",
            (offer.referral_id, inner.sender),
        ):
            # The sender erased the case and told us before its offer arrived
            # (another office's notice for the id bars nothing).
            return "erased-before-arrival"
        fields = sorted(offer.client)
        self.ctx.run(
            "INSERT INTO referrals (id, direction, peer, case_id, target_type, consent_id,"
            " consent, fields, client, note, state, reason, offer_msg_id, created, updated)"
            " VALUES (?, 'in', ?, NULL, ?, ?, ?, ?, ?, NULL, 'received', NULL, ?, ?, ?)",
            (
                offer.referral_id,
                inner.sender,
                offer.target_type,
                offer.consent.consent_id,
                dumps(offer.consent.to_map()),
                dumps(fields),
                dumps(dict(offer.client)),
                inner.msg_id,
                now,
                now,
            ),
        )
        self._event(offer.referral_id, IN, Event.RECEIVE, State.RECEIVED, now, None, inner.msg_id)
        receipt = Receipt(of_msg_id=inner.msg_id, received=now)
        self.network.enqueue(inner.sender, receipt, offer.referral_id)
        return None

    def _on_reply(self, inner: InnerMessage, reply: ReferralReply) -> str | None:
        ref = self._outgoing_from(inner, reply.referral_id)
        if isinstance(ref, str):
            return ref
        if ref.state == State.SENT:
            # The reply overtook the receipt: it proves delivery just as well.
            self._transition(ref, Event.RECEIPT, msg_id=inner.msg_id)
            ref = self.get(OUT, ref.referral_id)
        self._transition(ref, Event(reply.decision), reason=reply.reason, msg_id=inner.msg_id)
        if reply.note is not None:
            self.ctx.run(
                "UPDATE referrals SET reply_note = ? WHERE id = ? AND direction = ?",
                (reply.note, ref.referral_id, OUT),
            )
        return None

    def _on_status(self, inner: InnerMessage, status: ReferralStatus) -> str | None:
        ref = self._outgoing_from(inner, status.referral_id)
        if isinstance(ref, str):
            return ref
        if status.outcome in PROGRESS and ref.state in states.UNANSWERED_OUT:
            # The acceptance was overtaken (it expired and was re-sent after this
            # status, node/storage/redelivery.py): progress implies it, as a reply
            # implies the receipt. The late acceptance is then refused as stale.
            for event in (Event.RECEIPT, Event.ACCEPTED)[ref.state == State.DELIVERED :]:
                self._transition(ref, event, msg_id=inner.msg_id)
                ref = self.get(OUT, ref.referral_id)
        self._transition(
            ref,
            Event(status.outcome),
            reason=status.reason,
            msg_id=inner.msg_id,
            date=status.date,
        )
        return None

    def _on_withdraw(self, inner: InnerMessage, withdraw: ReferralWithdraw) -> str | None:
        ref = self._find(IN, withdraw.referral_id)
        if ref is None:
            return "unknown-referral"
        if ref.peer != inner.sender:
            return "sender-mismatch"
        self._transition(ref, Event.WITHDRAWN, reason=withdraw.reason, msg_id=inner.msg_id)
        self.ctx.run(
            "UPDATE referrals SET client = NULL WHERE id = ? AND direction = 'in'",
            (ref.referral_id,),
        )
        if ref.case_id is not None:
            self.cases.erase_fields(ref.case_id, list(ref.fields))
        # Our answers are moot now (never re-sent, node/storage/redelivery.py);
        # a decline note in them goes with the client's data.
        self.ctx.run(
            "UPDATE sent_log SET payload = NULL WHERE referral_id = ? AND type = ?",
            (ref.referral_id, ReferralReply.TYPE),
        )
        confirm = ReferralStatus(
            referral_id=ref.referral_id, outcome="withdrawal_confirmed", date=self.ctx.today()
        )
        self.network.enqueue(ref.peer, confirm, ref.referral_id)
        return None

    def _on_receipt(self, inner: InnerMessage, receipt: Receipt) -> str | None:
        sent = self.ctx.one(
            "SELECT referral_id, recipient, type FROM sent_log WHERE msg_id = ?",
            (receipt.of_msg_id,),
        )
        if sent is None or sent["recipient"] != inner.sender:
            return "unknown-message"
        sent_log.advance(self.ctx, receipt.of_msg_id, DeliveryEvent.RECEIPT)
        ref = self._find(OUT, sent["referral_id"]) if sent["referral_id"] else None
        if ref is not None and sent["type"] == ReferralOffer.TYPE and ref.state == State.SENT:
            self._transition(ref, Event.RECEIPT, msg_id=inner.msg_id)
        # A receipt arriving after the reply carries no news; nothing to do.
        return None
