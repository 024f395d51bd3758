"""The node's own private keys as the sync worker sees them, across a key rotation.

After `mbe-node keys rotate` the node holds its new keys and, until the end of
the overlap the hub granted, its previous ones: mail other offices sealed to
the previous encryption key before they learned the new one must still open.
The worker asks a `KeySource` (node/rotation.py reads the key files) once per
cycle, so a running `mbe-node serve` picks up rotated keys without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from protocol.keys import PrivateKeys


@dataclass(frozen=True)
class KeyRing:
    """Current keys, and the previous ones with the end of their overlap (0: none)."""

    current: PrivateKeys
    previous: PrivateKeys | None = None
    previous_until: int = 0

    def previous_at(self, now: int) -> PrivateKeys | None:
        """The previous keys while the overlap lasts, else None."""
        if self.previous is not None and now < self.previous_until:
            return self.previous
        return None


# Called with the current time; returns the keys to use from now on.
KeySource = Callable[[int], KeyRing]
