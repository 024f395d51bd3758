"""The node's and the hub's Period classes differ (node/stats/periods.py says how);
these tests pin down where they must agree."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.stats.errors import PeriodError
from hub.stats.periods import parse_period as hub_period
from node.stats.errors import BadPeriod
from node.stats.periods import parse_period as node_period


@pytest.mark.parametrize("text", ["2026-02", "2024-02", "2026-Q4", "2026-Q1", "2026"])
@pytest.mark.parametrize("grace", [0, 5, 15])
def test_the_same_period_has_the_same_days_and_deadline(text: str, grace: int) -> None:
    """Same id, first and last day; the node's `due` is the hub's 'after the deadline'."""
    node, hub = node_period(text), hub_period(text)
    assert (node.id, node.start, node.end, node.kind) == (hub.id, hub.start, hub.end, hub.kind)
    deadline = hub.deadline(grace)
    for today in (deadline - dt.timedelta(days=1), deadline, deadline + dt.timedelta(days=1)):
        assert node.due(today, grace) == (today > deadline)
        assert node.is_over(today) == hub.is_over(today)


@pytest.mark.parametrize("text", ["1999", "1999-12", "3000-Q1"])
def test_both_refuse_years_outside_the_range(text: str) -> None:
    """Years outside 2000-2999 are typos on both sides: the node refuses them before
    sealing anything, as the hub would."""
    with pytest.raises(BadPeriod, match="between 2000 and 2999"):
        node_period(text)
    with pytest.raises(PeriodError, match="year"):
        hub_period(text)
    assert node_period("2000-01").id == hub_period("2000-01").id
