"""The referral transition tables."""

from __future__ import annotations

import itertools

import pytest

from node.domain import referral_states as states
from node.domain.referral_states import Direction, Event, State
from node.errors import IllegalTransition

OUT_LEGAL = {
    ("sent", "receipt"): "delivered",
    ("sent", "expire"): "expired",
    ("sent", "withdraw"): "withdrawn",
    ("delivered", "accepted"): "accepted",
    ("delivered", "declined"): "declined",
    ("delivered", "expire"): "expired",
    ("delivered", "withdraw"): "withdrawn",
    ("expired", "withdrawal_confirmed"): "expired",
    ("accepted", "first_appointment"): "first_appointment",
    ("accepted", "completed_successful"): "completed_successful",
    ("accepted", "completed_unsuccessful"): "completed_unsuccessful",
    ("accepted", "withdraw"): "withdrawn",
    ("first_appointment", "completed_successful"): "completed_successful",
    ("first_appointment", "completed_unsuccessful"): "completed_unsuccessful",
    ("first_appointment", "withdraw"): "withdrawn",
    ("declined", "withdraw"): "withdrawn",
    ("completed_successful", "withdraw"): "withdrawn",
    ("completed_unsuccessful", "withdraw"): "withdrawn",
    ("withdrawn", "withdrawal_confirmed"): "withdrawal_confirmed",
}
IN_LEGAL = {
    ("received", "accept"): "accepted",
    ("received", "decline"): "declined",
    ("received", "withdrawn"): "withdrawn",
    ("received", "expire"): "expired",
    ("expired", "withdrawn"): "withdrawn",
    ("accepted", "first_appointment"): "first_appointment",
    ("accepted", "completed_successful"): "completed_successful",
    ("accepted", "completed_unsuccessful"): "completed_unsuccessful",
    ("accepted", "withdrawn"): "withdrawn",
    ("first_appointment", "completed_successful"): "completed_successful",
    ("first_appointment", "completed_unsuccessful"): "completed_unsuccessful",
    ("first_appointment", "withdrawn"): "withdrawn",
    ("declined", "withdrawn"): "withdrawn",
    ("completed_successful", "withdrawn"): "withdrawn",
    ("completed_unsuccessful", "withdrawn"): "withdrawn",
}
# An erasure is recorded in every state and moves none (docs/client-rights.md).
OUT_LEGAL |= {
    (s, e): s
    for s in (
        "sent", "delivered", "accepted", "declined", "first_appointment",
        "completed_successful", "completed_unsuccessful", "expired", "withdrawn",
        "withdrawal_confirmed",
    )
    for e in ("erasure_requested", "erasure_confirmed")
}  # fmt: skip
IN_LEGAL |= {
    (s, "erasure_requested"): s
    for s in (
        "received", "accepted", "declined", "first_appointment", "completed_successful",
        "completed_unsuccessful", "expired", "withdrawn",
    )
}  # fmt: skip


@pytest.mark.parametrize(("direction", "legal"), [("out", OUT_LEGAL), ("in", IN_LEGAL)])
def test_tables_are_exactly_the_documented_transitions(
    direction: str, legal: dict[tuple[str, str], str]
) -> None:
    """Each side's table holds exactly the transitions the docstring describes."""
    assert states.TABLES[Direction(direction)] == legal


@pytest.mark.parametrize(
    ("direction", "legal", "state", "event"),
    [("out", OUT_LEGAL, s, e) for (s, e) in OUT_LEGAL]
    + [("in", IN_LEGAL, s, e) for (s, e) in IN_LEGAL],
)
def test_every_legal_transition_moves(
    direction: str, legal: dict[tuple[str, str], str], state: str, event: str
) -> None:
    """next_state follows the table for every legal (state, event)."""
    new = states.next_state(Direction(direction), State(state), Event(event))
    assert new == legal[(state, event)]


@pytest.mark.parametrize(("direction", "legal"), [("out", OUT_LEGAL), ("in", IN_LEGAL)])
def test_every_other_pair_is_refused(direction: str, legal: dict[tuple[str, str], str]) -> None:
    """Every (state, event) pair outside the table raises IllegalTransition naming both."""
    events = {e for _, e in legal}
    refused = 0
    for state, event in itertools.product(states.states(Direction(direction)), events):
        if (state, event) in legal:
            continue
        with pytest.raises(IllegalTransition) as info:
            states.next_state(Direction(direction), state, Event(event))
        assert (info.value.state, info.value.event) == (state, event)
        refused += 1
    assert refused > 20


def test_final_states() -> None:
    """Expiry or a confirmed withdrawal ends an outgoing referral; withdrawal an incoming one.

    A confirmation recorded on an expired referral does not move it (a self-loop).
    """
    assert states.final_states(Direction.OUT) == {"expired", "withdrawal_confirmed"}
    assert states.final_states(Direction.IN) == {"withdrawn"}


def test_illegal_transition_is_a_409() -> None:
    """The API maps an illegal transition to 409 Conflict."""
    with pytest.raises(IllegalTransition) as info:
        states.next_state(Direction.OUT, State.EXPIRED, Event.RECEIPT)
    assert info.value.status == 409
    assert "expired" in str(info.value)


def test_tables_are_read_only_and_typed() -> None:
    """The tables cannot be changed at run time, and hold only enum members."""
    with pytest.raises(TypeError):
        states.OUTGOING[(State.SENT, Event.RECEIPT)] = State.EXPIRED  # type: ignore[index]
    for table in states.TABLES.values():
        for (state, event), new in table.items():
            assert isinstance(state, State)
            assert isinstance(event, Event)
            assert isinstance(new, State)


def test_every_stored_state_and_event_is_a_member() -> None:
    """Every state the tables reach and every event they take is an enum member, and
    the events only ever recorded (send, receive, resend) are members too."""
    reached = {s for d in Direction for s in states.states(d)}
    assert reached == set(State)
    taken = {e for d in Direction for (_, e) in states.TABLES[d]}
    assert set(Event) - taken == {Event.SEND, Event.RECEIVE, Event.RESEND}
