"""A statistics report revision's state (`stats_reports.state`) as a transition table.

    pending --stored (the hub confirmed it)--> submitted
    pending --refused (the hub said no for good)--> rejected
    pending --retry (hub unreachable; try again later)--> pending

A settled revision never moves again: a revision number is taken once, and a
later change of the counts is a new revision. Pure: no storage, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final


class ReportState(enum.StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    REJECTED = "rejected"


class ReportEvent(enum.StrEnum):
    STORED = "stored"
    REFUSED = "refused"
    RETRY = "retry"


TABLE: Final[Mapping[tuple[ReportState, ReportEvent], ReportState]] = MappingProxyType(
    {
        (ReportState.PENDING, ReportEvent.STORED): ReportState.SUBMITTED,
        (ReportState.PENDING, ReportEvent.REFUSED): ReportState.REJECTED,
        (ReportState.PENDING, ReportEvent.RETRY): ReportState.PENDING,
    }
)


def from_states(event: ReportEvent) -> tuple[ReportState, ...]:
    """The states `event` may leave (for a guarded UPDATE)."""
    return tuple(s for (s, e) in TABLE if e == event)


def after(event: ReportEvent) -> ReportState:
    """The state `event` leads to (the same from every state it may leave)."""
    targets = {new for (_, e), new in TABLE.items() if e == event}
    (target,) = targets
    return target
