"""Referral state machines as transition tables (h11 style).

Each side has its own table mapping (state, event) to the next state; anything
not in the table raises `IllegalTransition`. Pure: no storage, no clock. The
store records every transition with its time in `referral_events`.

Outgoing (the sending office):

    sent --receipt--> delivered --accepted--> accepted --first_appointment--> first_appointment
                                --declined--> declined
    accepted / first_appointment --completed_successful | completed_unsuccessful--> completed_*
    sent / delivered --expire--> expired
    expired --withdrawal_confirmed--> expired (recorded, the state stays)
    any state but withdrawn, withdrawal_confirmed, expired --withdraw--> withdrawn
    withdrawn --withdrawal_confirmed--> withdrawal_confirmed

Withdrawal is allowed after a decline or a completion too: DESIGN.md says "withdrawn
by the sender at any time", and a client who withdraws consent has the right to
have the received data deleted even then.

Incoming (the receiving office) mirrors it: received --accept--> accepted, etc.,
received --expire--> expired when the office never answered, and --withdrawn-->
withdrawn from every state but withdrawn itself.

Expiry of an unanswered referral (docs/node.md, "Unanswered referrals expire"):
the sender seals a `referral.withdraw` along with its `expire`, so the
recipient deletes what it holds; the recipient's confirmation is recorded on
the expired referral without moving it. The recipient also expires, and
deletes, an offer it never answered on its own, in case the sender cannot tell
it any more.
"""

from __future__ import annotations

from typing import Final

from node.errors import IllegalTransition

OUT: Final = "out"
IN: Final = "in"

_COMPLETION = ("completed_successful", "completed_unsuccessful")

OUTGOING: dict[tuple[str, str], str] = {
    ("sent", "receipt"): "delivered",
    ("sent", "expire"): "expired",
    ("delivered", "accepted"): "accepted",
    ("delivered", "declined"): "declined",
    ("delivered", "expire"): "expired",
    ("expired", "withdrawal_confirmed"): "expired",
    ("accepted", "first_appointment"): "first_appointment",
    ("withdrawn", "withdrawal_confirmed"): "withdrawal_confirmed",
}
for _state in ("accepted", "first_appointment"):
    for _outcome in _COMPLETION:
        OUTGOING[(_state, _outcome)] = _outcome
for _state in ("sent", "delivered", "accepted", "declined", "first_appointment", *_COMPLETION):
    OUTGOING[(_state, "withdraw")] = "withdrawn"

INCOMING: dict[tuple[str, str], str] = {
    ("received", "accept"): "accepted",
    ("received", "decline"): "declined",
    ("received", "expire"): "expired",
    ("accepted", "first_appointment"): "first_appointment",
}
for _state in ("accepted", "first_appointment"):
    for _outcome in _COMPLETION:
        INCOMING[(_state, _outcome)] = _outcome
for _state in ("received", "accepted", "declined", "first_appointment", "expired", *_COMPLETION):
    INCOMING[(_state, "withdrawn")] = "withdrawn"

TABLES: dict[str, dict[tuple[str, str], str]] = {OUT: OUTGOING, IN: INCOMING}
# Outgoing states still waiting for the recipient's answer (they can expire).
UNANSWERED_OUT: Final = ("sent", "delivered")
# Outgoing states in which the recipient may still hold and use the client's data
# for the referral; withdrawing the consent withdraws these (docs/node.md).
OPEN_OUT: Final = ("sent", "delivered", "accepted", "first_appointment")
INITIAL: dict[str, str] = {OUT: "sent", IN: "received"}


def states(direction: str) -> frozenset[str]:
    table = TABLES[direction]
    return frozenset({s for s, _ in table} | set(table.values()) | {INITIAL[direction]})


def final_states(direction: str) -> frozenset[str]:
    """States no event leaves (an event that is only recorded, a self-loop, stays)."""
    table = TABLES[direction]
    return states(direction) - {s for (s, _), new in table.items() if new != s}


def next_state(direction: str, state: str, event: str) -> str:
    """The state after `event`, or IllegalTransition."""
    try:
        return TABLES[direction][(state, event)]
    except KeyError:
        side = "outgoing" if direction == OUT else "incoming"
        raise IllegalTransition(side, state, event) from None


def allows(direction: str, state: str, event: str) -> bool:
    return (state, event) in TABLES[direction]
