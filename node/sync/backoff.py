"""Capped exponential backoff with full jitter, as pure functions.

After the n-th consecutive failure the worker waits a uniformly random time in
[0, min(cap, base * 2**(n-1))] ("full jitter"). Randomising the whole interval,
not just a small band around it, spreads a hundred offices that lost the hub
at the same moment over the whole window, so they do not return in lockstep.

Rejected alternative: "equal jitter" (half fixed, half random). It keeps a
minimum wait but bunches retries; an office's wait is bounded by the cap
either way, and the hub limits request rates anyway.
"""

from __future__ import annotations

from collections.abc import Callable

# 2**62 already exceeds any sensible cap; stops big ints from growing with the count.
_MAX_EXPONENT = 62


def ceiling(failures: int, *, base: float, cap: float) -> float:
    """The upper bound of the wait after `failures` consecutive failures (0 means no wait)."""
    if failures <= 0:
        return 0.0
    if not 0 < base <= cap:
        raise ValueError("backoff needs 0 < base <= cap")
    return float(min(cap, base * 2.0 ** min(failures - 1, _MAX_EXPONENT)))


def full_jitter(failures: int, *, base: float, cap: float, rng: Callable[[], float]) -> float:
    """A random wait in [0, ceiling]; `rng` returns floats in [0, 1)."""
    return ceiling(failures, base=base, cap=cap) * rng()
