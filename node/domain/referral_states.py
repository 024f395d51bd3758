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

Withdrawal is allowed after a decline or a completion too: the design says "withdrawn
by the sender at any time", and a client who withdraws consent has the right to
have the received data deleted even then.

Erasure of the client's case (docs/client-rights.md) is recorded in every
state without moving it: `erasure_requested` on both sides, `erasure_confirmed`
at the sender when the signed deletion receipt arrives. An incoming referral
still `received` is moved to `withdrawn` first: it can no longer be accepted.

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

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from node.errors import IllegalTransition


class Direction(enum.StrEnum):
    OUT = "out"
    IN = "in"


OUT: Final = Direction.OUT
IN: Final = Direction.IN


class State(enum.StrEnum):
    """A referral's state, as stored in `referrals.state`."""

    SENT = "sent"
    RECEIVED = "received"
    DELIVERED = "delivered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    FIRST_APPOINTMENT = "first_appointment"
    COMPLETED_SUCCESSFUL = "completed_successful"
    COMPLETED_UNSUCCESSFUL = "completed_unsuccessful"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    WITHDRAWAL_CONFIRMED = "withdrawal_confirmed"


class Event(enum.StrEnum):
    """What happens to a referral, as recorded in `referral_events.event`.

    The sender's events name what it learns (`accepted`: the recipient accepted),
    the recipient's what it does (`accept`), as the protocol's messages do.
    """

    # The first event of each side: the offer was sealed / it arrived.
    SEND = "send"
    RECEIVE = "receive"
    RECEIPT = "receipt"
    EXPIRE = "expire"
    ACCEPT = "accept"
    DECLINE = "decline"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    FIRST_APPOINTMENT = "first_appointment"
    COMPLETED_SUCCESSFUL = "completed_successful"
    COMPLETED_UNSUCCESSFUL = "completed_unsuccessful"
    WITHDRAW = "withdraw"
    WITHDRAWN = "withdrawn"
    WITHDRAWAL_CONFIRMED = "withdrawal_confirmed"
    # Recorded in the history only, the state stays: a message was sealed again.
    RESEND = "resend"
    # The client's case was erased: the sender asked the recipient to erase
    # (outgoing), the recipient was asked and erased (incoming); the recipient's
    # signed deletion receipt arrived (outgoing). The state stays.
    ERASURE_REQUESTED = "erasure_requested"
    ERASURE_CONFIRMED = "erasure_confirmed"


Table = Mapping[tuple[State, Event], State]
_COMPLETION: Final = (Event.COMPLETED_SUCCESSFUL, Event.COMPLETED_UNSUCCESSFUL)


def _table(*parts: Iterable[tuple[tuple[State, Event], State]]) -> Table:
    """One read-only table from several groups of transitions; a pair twice is a bug."""
    table: dict[tuple[State, Event], State] = {}
    for part in parts:
        for key, new in part:
            if key in table:
                raise AssertionError(f"transition {key} listed twice")
            table[key] = new
    return MappingProxyType(table)


def _completions(*froms: State) -> list[tuple[tuple[State, Event], State]]:
    return [((s, e), State(e.value)) for s in froms for e in _COMPLETION]


def _into(event: Event, new: State, *froms: State) -> list[tuple[tuple[State, Event], State]]:
    return [((s, event), new) for s in froms]


def _recorded(event: Event, *at: State) -> list[tuple[tuple[State, Event], State]]:
    """An event recorded in any of `at` that leaves the state as it is."""
    return [((s, event), s) for s in at]


_OUT_STATES: Final = (
    State.SENT,
    State.DELIVERED,
    State.ACCEPTED,
    State.DECLINED,
    State.FIRST_APPOINTMENT,
    State.COMPLETED_SUCCESSFUL,
    State.COMPLETED_UNSUCCESSFUL,
    State.EXPIRED,
    State.WITHDRAWN,
    State.WITHDRAWAL_CONFIRMED,
)
_IN_STATES: Final = (
    State.RECEIVED,
    State.ACCEPTED,
    State.DECLINED,
    State.FIRST_APPOINTMENT,
    State.COMPLETED_SUCCESSFUL,
    State.COMPLETED_UNSUCCESSFUL,
    State.EXPIRED,
    State.WITHDRAWN,
)


OUTGOING: Final = _table(
    [
        ((State.SENT, Event.RECEIPT), State.DELIVERED),
        ((State.SENT, Event.EXPIRE), State.EXPIRED),
        ((State.DELIVERED, Event.ACCEPTED), State.ACCEPTED),
        ((State.DELIVERED, Event.DECLINED), State.DECLINED),
        ((State.DELIVERED, Event.EXPIRE), State.EXPIRED),
        ((State.EXPIRED, Event.WITHDRAWAL_CONFIRMED), State.EXPIRED),
        ((State.ACCEPTED, Event.FIRST_APPOINTMENT), State.FIRST_APPOINTMENT),
        ((State.WITHDRAWN, Event.WITHDRAWAL_CONFIRMED), State.WITHDRAWAL_CONFIRMED),
    ],
    _completions(State.ACCEPTED, State.FIRST_APPOINTMENT),
    _into(
        Event.WITHDRAW,
        State.WITHDRAWN,
        State.SENT,
        State.DELIVERED,
        State.ACCEPTED,
        State.DECLINED,
        State.FIRST_APPOINTMENT,
        State.COMPLETED_SUCCESSFUL,
        State.COMPLETED_UNSUCCESSFUL,
    ),
    _recorded(Event.ERASURE_REQUESTED, *_OUT_STATES),
    _recorded(Event.ERASURE_CONFIRMED, *_OUT_STATES),
)

INCOMING: Final = _table(
    [
        ((State.RECEIVED, Event.ACCEPT), State.ACCEPTED),
        ((State.RECEIVED, Event.DECLINE), State.DECLINED),
        ((State.RECEIVED, Event.EXPIRE), State.EXPIRED),
        ((State.ACCEPTED, Event.FIRST_APPOINTMENT), State.FIRST_APPOINTMENT),
    ],
    _completions(State.ACCEPTED, State.FIRST_APPOINTMENT),
    _into(
        Event.WITHDRAWN,
        State.WITHDRAWN,
        State.RECEIVED,
        State.ACCEPTED,
        State.DECLINED,
        State.FIRST_APPOINTMENT,
        State.EXPIRED,
        State.COMPLETED_SUCCESSFUL,
        State.COMPLETED_UNSUCCESSFUL,
    ),
    _recorded(Event.ERASURE_REQUESTED, *_IN_STATES),
)

TABLES: Final[Mapping[Direction, Table]] = MappingProxyType({OUT: OUTGOING, IN: INCOMING})
# Outgoing states still waiting for the recipient's answer (they can expire).
UNANSWERED_OUT: Final = (State.SENT, State.DELIVERED)
# Outgoing states in which the recipient may still hold and use the client's data
# for the referral; withdrawing the consent withdraws these (docs/node.md).
OPEN_OUT: Final = (State.SENT, State.DELIVERED, State.ACCEPTED, State.FIRST_APPOINTMENT)
COMPLETED: Final = (State.COMPLETED_SUCCESSFUL, State.COMPLETED_UNSUCCESSFUL)
INITIAL: Final[Mapping[Direction, State]] = MappingProxyType({OUT: State.SENT, IN: State.RECEIVED})


def states(direction: Direction) -> frozenset[State]:
    table = TABLES[direction]
    return frozenset({s for s, _ in table} | set(table.values()) | {INITIAL[direction]})


def final_states(direction: Direction) -> frozenset[State]:
    """States no event leaves (an event that is only recorded, a self-loop, stays)."""
    table = TABLES[direction]
    return states(direction) - {s for (s, _), new in table.items() if new != s}


def next_state(direction: Direction, state: State, event: Event) -> State:
    """The state after `event`, or IllegalTransition."""
    try:
        return TABLES[direction][(state, event)]
    except KeyError:
        side = "outgoing" if direction == OUT else "incoming"
        raise IllegalTransition(side, state, event) from None


def allows(direction: Direction, state: State, event: Event) -> bool:
    return (state, event) in TABLES[direction]
