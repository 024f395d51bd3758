"""`[stats]` in node.toml: automatic submission of the office's statistics."""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import ConfigError

PERIOD_KINDS = ("month", "quarter", "year")


@dataclass(frozen=True)
class StatsSettings:
    """Times in seconds unless named in days or months."""

    # Submit ended periods on their own (manual submission works either way).
    auto_submit: bool = True
    # Days after a period's last day before it is submitted: room for late entries.
    submit_after_days: int = 5
    # Which kinds of period are submitted automatically.
    periods: tuple[str, ...] = PERIOD_KINDS
    # How far back ended periods are considered (and re-checked for late changes).
    lookback_months: int = 24
    # How often the scheduler looks for due or changed periods.
    check_interval: float = 3600.0
    # First retry delay after the hub was unreachable; doubles up to check_interval.
    retry_min: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.submit_after_days <= 60:
            raise ConfigError("stats.submit_after_days must be between 0 and 60")
        if not isinstance(self.periods, tuple) or not all(p in PERIOD_KINDS for p in self.periods):
            raise ConfigError("stats.periods must be a list of month, quarter, year")
        if not self.periods:
            raise ConfigError(
                "stats.periods must name at least one of month, quarter, year"
                " (to submit nothing on its own, set stats.auto_submit = false)"
            )
        if len(set(self.periods)) != len(self.periods):
            raise ConfigError("stats.periods names a kind twice")
        if not 1 <= self.lookback_months <= 120:
            raise ConfigError("stats.lookback_months must be between 1 and 120")
        if not 60 <= self.check_interval <= 7 * 86400:
            raise ConfigError("stats.check_interval must be between 60 seconds and 7 days")
        if not 1 <= self.retry_min <= self.check_interval:
            raise ConfigError("stats.retry_min must be between 1 and stats.check_interval")
