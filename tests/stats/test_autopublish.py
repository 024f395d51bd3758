"""Due periods are published in the background with the same set a reader would fix."""

from __future__ import annotations

from hub.context import DB
from hub.stats.autopublish import publish_due
from hub.stats.store import periods, publication
from tests.stats.hubside import (
    ACTIVE,
    DAY,
    OFFICE_A,
    OFFICE_B,
    OFFICE_C,
    PERIOD,
    PUBLISHED,
    StatsHub,
    make_report,
    published,
    three_offices,
)


async def test_a_due_period_is_published_once_without_a_reader(stats_hub: StatsHub) -> None:
    """Past the cutoff the task publishes the period (once); before it, nothing."""
    await three_offices(stats_hub, publish=False)
    app = stats_hub.app
    assert await publish_due(app, PUBLISHED - DAY) == []
    assert await app[DB].run(publication, PERIOD) is None

    assert await publish_due(app, PUBLISHED) == [PERIOD]
    held = await app[DB].run(publication, PERIOD)
    assert held is not None
    assert held.reports == 3
    assert await publish_due(app, PUBLISHED + DAY) == []


async def test_background_publication_fixes_the_set_a_reader_would(stats_hub: StatsHub) -> None:
    """A revision sent after the cutoff but before the task ran does not count: the
    numbers are those of the reports received before the cutoff."""
    _, b, _ = await three_offices(stats_hub)  # clock now past the cutoff, nothing read
    late = await stats_hub.submit(b, make_report({(ACTIVE, ()): 2}, revision=2))
    assert late.status == 200
    assert await publish_due(stats_hub.app, stats_hub.clock.now()) == [PERIOD]
    doc = await stats_hub.get_json(
        f"/coordinator/v1/tables?period={PERIOD}&measure={ACTIVE}", stats_hub.token()
    )
    assert doc["total"]["value"] == published((OFFICE_A, OFFICE_B, OFFICE_C), (ACTIVE, ()))


async def test_reported_periods_are_read_from_current_revisions(stats_hub: StatsHub) -> None:
    """An office's period is listed once however many revisions it sent, and only
    for the offices asked about."""
    a, _, _ = await three_offices(stats_hub, publish=False)
    assert (await stats_hub.submit(a, make_report(OFFICE_A, revision=2))).status == 200
    other = await stats_hub.node("Caritas Bonn", "Caritas")
    assert (await stats_hub.submit(other, make_report(OFFICE_A, period="2026-10"))).status == 200
    db = stats_hub.app[DB]
    assert await db.run(periods, {a.node_id}) == [PERIOD]
    assert await db.run(periods, {a.node_id, other.node_id}) == ["2026-10", PERIOD]
    assert await db.run(periods, set()) == []
