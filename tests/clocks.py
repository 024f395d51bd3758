"""Fixed clocks and randomness for tests of node and hub (support/clock.py).

Production code takes a `Deps`; tests build one from these, so timestamps,
ids and nonces are whatever the test says.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass

from support.clock import Clock, Deps, SystemRandom

T0 = 1_790_000_000  # 2026-09-21, a fixed "now"


@dataclass
class FakeClock:
    """A clock the test moves by hand; its date is the UTC date of `t`."""

    t: int = T0

    def now(self) -> int:
        return self.t

    def today(self) -> str:
        return dt.datetime.fromtimestamp(self.t, dt.UTC).date().isoformat()

    def advance(self, seconds: int) -> None:
        self.t += seconds


@dataclass
class CountingRandom:
    """Deterministic bytes: a hash of a label and a counter."""

    label: str
    n: int = 0

    def token_bytes(self, size: int) -> bytes:
        self.n += 1
        out = b""
        i = 0
        while len(out) < size:
            out += hashlib.sha256(f"{self.label}:{self.n}:{i}".encode()).digest()
            i += 1
        return out[:size]


class MidpointRandom:
    """System randomness, except that every draw starts with 0x80: `uniform()`
    (the sync worker's backoff jitter) is just above 0.5, nonces never repeat."""

    def token_bytes(self, size: int) -> bytes:
        return (b"\x80" + os.urandom(size))[:size]


def clocked(clock: Clock) -> Deps:
    """`clock` with the system's randomness."""
    return Deps(clock=clock, random=SystemRandom())
