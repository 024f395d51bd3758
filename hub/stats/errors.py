"""Errors of the statistics core; a branch of the hub's one hierarchy (hub/errors.py).
Messages name the problem, never a count."""

from __future__ import annotations

from hub.errors import HubError


class StatsError(HubError):
    """Base class: a period, table request or report set the statistics core refuses."""


class PeriodError(StatsError):
    """A period id is not `YYYY`, `YYYY-Qn` or `YYYY-MM`."""


class TableSpecError(StatsError):
    """A table asks for an unknown measure or a dimension the measure does not have."""


class ReportSetError(StatsError):
    """Reports handed to aggregation do not fit together (wrong period, duplicate office)."""
