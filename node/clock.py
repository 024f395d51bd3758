"""Clock and randomness, injected wherever behaviour depends on them.

Production code gets `SystemClock` and `SystemRandom`; tests pass fixed ones so
message ids, ephemeral keys and timestamps (and thus sealed bytes) are
reproducible.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Unix time in seconds."""

    def today(self) -> str:
        """The office's local calendar date as YYYY-MM-DD."""


class Random(Protocol):
    def token_bytes(self, n: int) -> bytes: ...


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
    """The clock and randomness a running node uses."""

    clock: Clock
    random: Random

    @classmethod
    def system(cls) -> Deps:
        return cls(clock=SystemClock(), random=SystemRandom())


def new_id(random: Random) -> str:
    """A 128-bit id in the protocol's message-id format (32 lowercase hex)."""
    return random.token_bytes(16).hex()
