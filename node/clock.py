"""The node's names for the injected clock and randomness, and its ids.

`Clock`, `Random`, `Deps` and the system implementations are defined once in
`support/clock.py`, shared with the hub; they are re-exported here, so
`from node.clock import Deps` and the like keep working.
"""

from __future__ import annotations

import threading

from protocol.ids import ID_RANDOM_BYTES, time_ordered_id
from support.clock import Clock, Deps, Random, SystemClock, SystemRandom

__all__ = [
    "MESSAGE_IDS",
    "Clock",
    "Deps",
    "MessageIdClock",
    "Random",
    "SystemClock",
    "SystemRandom",
    "new_id",
    "new_message_id",
]


def new_id(random: Random) -> str:
    """A 128-bit random id in the protocol's id format (32 lowercase hex).

    For records that may leave the node inside a sealed message (referral ids)
    or never leave it (cases, consents): they carry no time.
    """
    return random.token_bytes(16).hex()


class MessageIdClock:
    """The time part of message ids: rises with every id made with it.

    One per process (`MESSAGE_IDS`) for the node's messages; tests make their own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next_millis(self, now: int) -> int:
        """`now` (unix seconds) in milliseconds, or one more than the last if that is not later."""
        with self._lock:
            self._last = max(now * 1000, self._last + 1)
            return self._last


MESSAGE_IDS = MessageIdClock()


def new_message_id(random: Random, now: int, ids: MessageIdClock = MESSAGE_IDS) -> str:
    """A message id: the time in its first 48 bits, 80 random bits after it.

    Same format as `new_id` (32 lowercase hex). Ids of one process rise
    strictly: the time part is `now` (whole seconds, from the injected clock)
    in milliseconds, or one more than the last id's if that is not later, so a
    burst of ids counts up through the milliseconds of its second. The hub's
    indexes on message ids then grow at their ends (docs/hub.md,
    "Throughput"); nobody relies on the order. What it reveals: the creation
    second, which the hub already reads from the envelope's expiry (creation +
    the message TTL) and the recipient from the sealed message's `created`.
    """
    return time_ordered_id(ids.next_millis(now), random.token_bytes(ID_RANDOM_BYTES))
