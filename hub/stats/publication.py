"""When a period's numbers are published, and with which reports (docs/statistics.md,
"One publication per period").

The rule: a period is published once. By default that happens at the *cutoff*,
the end of its deadline day (period end + `stats.grace_days`) in the reporting
time zone, with the newest revision each office sent before it; the first
request after the cutoff records that set (`store.publish`). The hub operator may
publish a period that has ended earlier (`mbe-hub stats publish`), when every
office has reported: then the cutoff is that moment. Either way, whatever
arrives after the cutoff is stored and audited but counted in no published
number, so a period has exactly one snapshot and two snapshots cannot be
differenced.

Functions take the database first: they run on the hub's database thread or in
the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from hub.settings import HubSettings
from hub.stats.errors import StatsError
from hub.stats.periods import Period
from hub.stats.store import Publication, ensure_summed, late_revisions, publication, publish
from hub.storage.engine import Db


def cutoff(period: Period, settings: HubSettings) -> int:
    """The instant a period's numbers are fixed by default: the end of its deadline day."""
    zone = ZoneInfo(settings.stats.timezone)
    day_after = period.deadline(settings.stats.grace_days) + timedelta(days=1)
    return int(datetime.combine(day_after, time(0), zone).timestamp())


def due(db: Db, period: Period, settings: HubSettings, now: int) -> Publication | None:
    """The period's publication: the recorded one, or made now if its cutoff has passed.

    A period published before the hub kept sums per organisation gets them here,
    once, before its first table is read (`ensure_summed`)."""
    held = publication(db, period.id)
    if held is not None:
        ensure_summed(db, period.id)
        return held
    fixed_at = cutoff(period, settings)
    return publish(db, period.id, fixed_at, now) if now >= fixed_at else None


def publish_now(
    db: Db, period: Period, settings: HubSettings, now: int
) -> tuple[Publication, bool]:
    """Publish `period` at once (the operator's early publication); (publication, new).

    Refuses a period that has not ended. After the default cutoff this is the
    default publication (nothing that arrived later is let in).
    """
    held = publication(db, period.id)
    if held is not None:
        return held, False
    today = datetime.fromtimestamp(now, ZoneInfo(settings.stats.timezone)).date()
    if not period.is_over(today):
        raise StatsError(
            f"period {period.id} has not ended; it can be published after {period.end}"
        )
    # Receive times are whole seconds: a report stored in this very second (the
    # last office's, just before the operator publishes) counts.
    return publish(db, period.id, min(now + 1, cutoff(period, settings)), now), True


def late_count(db: Db, period: Period, held: Publication) -> int:
    """Reports of `period` that arrived after its cutoff and so count nowhere."""
    return late_revisions(db, period.id, held.cutoff)


@dataclass(frozen=True)
class PeriodState:
    """One period as the operator sees it: published or when it will be, and late arrivals."""

    period: str
    published: Publication | None
    publishes_at: int
    late: int


def states(db: Db, settings: HubSettings, periods: list[Period]) -> list[PeriodState]:
    out = []
    for p in periods:
        held = publication(db, p.id)
        late = late_count(db, p, held) if held is not None else 0
        out.append(PeriodState(p.id, held, cutoff(p, settings), late))
    return out
