"""Clock and randomness: the one way node and hub inject them.

Everything whose behaviour depends on the time or on chance takes a `Deps` (or
its `clock` or `random`): the node's storage, API, sync worker and hub client,
the hub's handlers and maintenance. Production code gets `Deps.system()`; tests
pass fixed ones so message ids, nonces, ephemeral keys and timestamps (and thus
sealed bytes) are reproducible, and so moving one clock moves a whole process.

Whole seconds are enough everywhere: every timestamp the protocol carries is an
integer. Timers that only measure intervals use the event loop's monotonic
clock, which is not injected.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from typing import Protocol

_UNIT_BYTES = 7  # 56 bits: exact in a float's 53-bit mantissa after the division


class Clock(Protocol):
    def now(self) -> int:
        """Unix time in whole seconds."""

    def today(self) -> str:
        """The local calendar date (the office's, on a node) as YYYY-MM-DD."""


class Random(Protocol):
    def token_bytes(self, n: int) -> bytes:
        """`n` unpredictable bytes."""


class SystemClock:
    def now(self) -> int:
        return int(time.time())

    def today(self) -> str:
        return dt.date.today().isoformat()


class SystemRandom:
    def token_bytes(self, n: int) -> bytes:
        return os.urandom(n)


@dataclass(frozen=True)
class Deps:
    """The clock and randomness a running node or hub uses."""

    clock: Clock
    random: Random

    @classmethod
    def system(cls) -> Deps:
        return cls(clock=SystemClock(), random=SystemRandom())


def uniform(random: Random) -> float:
    """A float in [0, 1) from `random` (e.g. backoff jitter)."""
    return int.from_bytes(random.token_bytes(_UNIT_BYTES), "big") / float(1 << (8 * _UNIT_BYTES))


def nonce(random: Random) -> str:
    """A request nonce: 16 random bytes as hex, as protocol.requests expects."""
    return random.token_bytes(16).hex()
