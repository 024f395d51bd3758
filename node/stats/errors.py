"""What the statistics part of the node refuses; part of the NodeError hierarchy.

Each class carries an HTTP status and problem type for the API, and a one-line
message for the CLI. Messages name periods and states, never counts.
"""

from __future__ import annotations

from node.errors import NodeError


class StatsRefused(NodeError):
    """Base class: a statistics request the node cannot carry out."""

    status = 422
    kind = "stats"
    title = "Statistics request refused"


class BadPeriod(StatsRefused):
    """The period is not `YYYY-MM`, `YYYY-Qn` or `YYYY`."""

    status = 422
    kind = "bad-period"
    title = "Not a reporting period"


class PeriodNotOver(StatsRefused):
    """Only periods that have ended can be submitted (an open one would be partial)."""

    status = 409
    kind = "period-open"
    title = "Period has not ended"


class ReportTooLarge(StatsRefused):
    """Even the reduced report does not fit into one sealed message."""

    status = 500
    kind = "report-too-large"
    title = "Statistics report too large"


class HubRefusedReport(StatsRefused):
    """The hub refused the report for good; retrying the same report will not help.

    422, not 502: the hub answered properly, it refused this report's content.
    """

    status = 422
    kind = "hub-refused"
    title = "The hub refused the report"
