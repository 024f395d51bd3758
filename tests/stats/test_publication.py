"""One publication per period: the default cutoff, early publication by the operator,
late reports counted, and the `mbe-hub stats` commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.settings import HubSettings
from hub.stats.errors import StatsError
from hub.stats.periods import parse_period
from hub.stats.publication import cutoff, due, publish_now, states
from hub.stats.store import publication
from tests.hub.engines import hub_db
from tests.hub.proc import run_cli
from tests.stats.hubside import (
    ACTIVE,
    DAY,
    OFFICE_B,
    PERIOD,
    PUBLISHED,
    START,
    StatsHub,
    make_report,
    three_offices,
)

NOVEMBER = parse_period(PERIOD)


def test_the_default_cutoff_is_the_end_of_the_deadline_day(hub_settings: HubSettings) -> None:
    """November 2026 with 15 grace days is fixed at 16 December 00:00 in Berlin."""
    assert cutoff(NOVEMBER, hub_settings) == PUBLISHED - 3600


async def test_due_publishes_only_after_the_cutoff_and_only_once(stats_hub: StatsHub) -> None:
    """Before the cutoff nothing is published; after it the set is fixed and kept."""
    await three_offices(stats_hub, publish=False)
    db = hub_db(stats_hub.settings)
    try:
        assert due(db, NOVEMBER, stats_hub.settings, PUBLISHED - 3601) is None
        first = due(db, NOVEMBER, stats_hub.settings, PUBLISHED)
        assert first is not None
        assert (first.reports, first.cutoff) == (3, PUBLISHED - 3600)
        assert due(db, NOVEMBER, stats_hub.settings, PUBLISHED + 99 * DAY) == first
        audit = db.execute(
            "SELECT detail FROM audit_log WHERE action = 'stats.published'"
        ).fetchall()
    finally:
        db.close()
    assert audit == [(f"reports=3 cutoff={PUBLISHED - 3600}",)]


async def test_early_publication_counts_what_arrived_before_it(stats_hub: StatsHub) -> None:
    """`stats publish` before the deadline fixes the reports received until then."""
    _, b, _ = await three_offices(stats_hub, publish=False)
    db = hub_db(stats_hub.settings)
    try:
        with pytest.raises(StatsError, match="has not ended"):
            publish_now(db, parse_period("2026-12"), stats_hub.settings, START)
        held, new = publish_now(db, NOVEMBER, stats_hub.settings, START)
        # The reports arrived at START, the very second of publishing: they count.
        assert (new, held.reports, held.cutoff) == (True, 3, START + 1)
        stats_hub.clock.advance(DAY)
        assert (await stats_hub.submit(b, make_report(OFFICE_B, revision=2))).status == 200
        again, new = publish_now(db, NOVEMBER, stats_hub.settings, START + 2 * DAY)
        assert (new, again) == (False, held)
        (state,) = states(db, stats_hub.settings, [NOVEMBER])
        published = db.execute(
            "SELECT r.revision FROM stats_published_reports p "
            "JOIN stats_reports r ON r.id = p.report_id WHERE r.office = ?",
            (b.node_id,),
        ).fetchall()
    finally:
        db.close()
    assert (state.published, state.late) == (held, 1)
    assert published == [(1,)]  # the early publication keeps revision 1


async def test_publishing_after_the_cutoff_never_lets_late_reports_in(
    stats_hub: StatsHub,
) -> None:
    """An operator's publish after the deadline uses the deadline, not the moment."""
    _, b, _ = await three_offices(stats_hub, publish=False)
    stats_hub.clock.t = PUBLISHED + DAY
    assert (await stats_hub.submit(b, make_report({(ACTIVE, ()): 3}, revision=2))).status == 200
    db = hub_db(stats_hub.settings)
    try:
        held, new = publish_now(db, NOVEMBER, stats_hub.settings, PUBLISHED + 2 * DAY)
        assert publication(db, PERIOD) == held
    finally:
        db.close()
    assert (new, held.cutoff, held.reports) == (True, PUBLISHED - 3600, 3)


async def test_stats_status_lists_provisional_and_published_periods(stats_hub: StatsHub) -> None:
    """`mbe-hub stats status` shows each period's state, report count and late arrivals."""
    data_dir = stats_hub.settings.data_dir
    out = run_cli("stats", "status", "--dir", str(data_dir))
    assert (out.returncode, out.stdout.strip()) == (0, "no statistics reports yet")
    _, b, _ = await three_offices(stats_hub, publish=False)
    out = run_cli("stats", "status", "--dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    assert "2026-11   provisional until 2026-12-15 23:00 UTC" in out.stdout
    db = hub_db(stats_hub.settings)
    try:
        due(db, NOVEMBER, stats_hub.settings, PUBLISHED)
    finally:
        db.close()
    stats_hub.clock.t = PUBLISHED + DAY
    assert (await stats_hub.submit(b, make_report(OFFICE_B, revision=2))).status == 200
    out = run_cli("stats", "status", "--dir", str(data_dir))
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("2026-11"))
    assert line.split()[1:3] == ["published", "2026-12-16"]
    assert line.split()[-2:] == ["3", "1"]


def test_stats_publish_refuses_bad_periods_in_one_line(tmp_path: Path) -> None:
    """A malformed period, or one that has not ended: one line on stderr, exit 1."""
    data_dir = tmp_path / "hub"
    assert run_cli("init", "--dir", str(data_dir)).returncode == 0
    for period, message in (("2026-13", "--period"), ("2999-01", "has not ended")):
        out = run_cli("stats", "publish", "--dir", str(data_dir), "--period", period)
        assert out.returncode == 1
        assert "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert message in out.stderr
