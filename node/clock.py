"""The node's names for the injected clock and randomness, and its message ids.

`Clock`, `Random`, `Deps` and the system implementations are defined once in
`support/clock.py`, shared with the hub; they are re-exported here, so
`from node.clock import Deps` and the like keep working.
"""

from __future__ import annotations

from support.clock import Clock, Deps, Random, SystemClock, SystemRandom

__all__ = ["Clock", "Deps", "Random", "SystemClock", "SystemRandom", "new_id"]


def new_id(random: Random) -> str:
    """A 128-bit id in the protocol's message-id format (32 lowercase hex)."""
    return random.token_bytes(16).hex()
