"""Capped exponential backoff with full jitter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.sync.backoff import ceiling, full_jitter


def test_ceiling_doubles_from_base_then_caps() -> None:
    """The bound is base, 2*base, 4*base, ... until the cap, and stays there."""
    bounds = [ceiling(n, base=1.0, cap=10.0) for n in range(0, 7)]
    assert bounds == [0.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_ceiling_survives_very_long_outages() -> None:
    """After a million failures the bound is still the cap (no overflow)."""
    assert ceiling(1_000_000, base=0.5, cap=300.0) == 300.0


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    """rng 0 gives no wait, rng just below 1 gives almost the whole bound."""
    assert full_jitter(3, base=1.0, cap=300.0, rng=lambda: 0.0) == 0.0
    assert full_jitter(3, base=1.0, cap=300.0, rng=lambda: 0.999) == 4.0 * 0.999
    assert full_jitter(30, base=1.0, cap=300.0, rng=lambda: 0.5) == 150.0


@settings(max_examples=200, deadline=None)
@given(
    failures=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=10.0),
    extra=st.floats(min_value=0.0, max_value=1000.0),
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_full_jitter_never_exceeds_the_cap(
    failures: int, base: float, extra: float, r: float
) -> None:
    """Whatever the failure count and random draw, the wait is within [0, cap]."""
    cap = base + extra
    wait = full_jitter(failures, base=base, cap=cap, rng=lambda: r)
    assert 0.0 <= wait <= cap
