"""Message ids are time-ordered (issue 11); every other id stays random.

A node's message ids start with the time (48 bits of milliseconds) so the
hub's indexes grow at their ends; 80 random bits follow, so an office that
saw earlier ids of another cannot take its next one first. The format is the
protocol's (32 lowercase hex), so older random ids and newer ones mix.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from node.clock import MessageIdClock, new_id, new_message_id
from protocol.envelope import Envelope
from protocol.ids import MESSAGE_ID, time_ordered_id
from protocol.payloads import Receipt
from tests.clocks import T0, CountingRandom
from tests.node.conftest import Office, make_office


def _millis(msg_id: str) -> int:
    return int(msg_id[:12], 16)


def test_the_format_is_the_protocols_and_the_time_comes_first() -> None:
    now = T0
    msg_id = new_message_id(CountingRandom("fmt"), now, MessageIdClock())
    assert MESSAGE_ID.fullmatch(msg_id)
    assert _millis(msg_id) == now * 1000


def test_the_80_bits_after_the_time_are_the_randomness_not_a_counter() -> None:
    random, ids = CountingRandom("rnd"), MessageIdClock()
    first, second = new_message_id(random, T0, ids), new_message_id(random, T0, ids)
    expected = CountingRandom("rnd")
    assert first[12:] == expected.token_bytes(10).hex()
    assert second[12:] == expected.token_bytes(10).hex()
    assert int(second, 16) - int(first, 16) != 1


def test_ids_of_one_process_rise_strictly_in_one_second_and_when_the_clock_steps_back() -> None:
    random, clock = CountingRandom("mono"), MessageIdClock()
    ids = [new_message_id(random, T0, clock) for _ in range(3000)]
    ids += [new_message_id(random, T0 - 3600, clock) for _ in range(100)]
    ids += [new_message_id(random, T0 + 10, clock)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # A burst counts up through the milliseconds of its second (and past them);
    # a later second starts at its own first millisecond again.
    assert _millis(ids[0]) == T0 * 1000
    assert _millis(ids[2999]) == T0 * 1000 + 2999
    assert _millis(ids[-1]) == (T0 + 10) * 1000
    assert all(MESSAGE_ID.fullmatch(i) for i in ids)


def test_time_ordered_id_refuses_what_does_not_fit() -> None:
    assert time_ordered_id(0, bytes(10)) == "0" * 32
    assert time_ordered_id((1 << 48) - 1, b"\xff" * 10) == "f" * 32
    with pytest.raises(ValueError, match="48 bits"):
        time_ordered_id(1 << 48, bytes(10))
    with pytest.raises(ValueError, match="random bytes"):
        time_ordered_id(0, bytes(16))


def test_record_ids_carry_no_time() -> None:
    """Referral ids travel to the recipient office, case ids never leave: random only."""
    assert new_id(CountingRandom("rec")) == CountingRandom("rec").token_bytes(16).hex()


@pytest.fixture
def office() -> Iterator[Office]:
    o = make_office("caritas-nbg")
    yield o
    o.store.close()


def test_the_outbox_gets_time_ordered_ids_from_the_office_clock(office: Office) -> None:
    sent = [
        office.store.network.enqueue("awo-fue", Receipt(of_msg_id="a" * 32, received=T0), None)
        for _ in range(3)
    ]
    assert sent == sorted(sent)
    assert _millis(sent[0]) >= office.clock.t * 1000
    pending = office.store.sync.outbox_pending(10)
    assert sorted(Envelope.decode(m.envelope).msg_id for m in pending) == sent
