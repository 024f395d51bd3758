"""Sealing, submission, revisions and the scheduled run against a fake hub."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from node.errors import InvalidInput, NotEnrolled
from node.jobs.stats_scheduler import StatsScheduler
from node.stats.compute import compute
from node.stats.errors import BadPeriod, PeriodNotOver
from node.stats.facts import load_facts
from node.stats.periods import parse_period
from node.stats.service import QUEUED, SUBMITTED_NOW, UNCHANGED
from node.stats.settings import StatsSettings
from tests.node.conftest import Office, make_office
from tests.node_stats.conftest import FakeHub, Known, add_case, make_service, set_today, ts


async def test_submission_opens_with_the_hub_key_into_the_same_report(
    known: Known, hub: FakeHub
) -> None:
    """The sealed envelope opens with the hub's private key into exactly the computed report."""
    service = make_service(known.office, hub)
    outcome = await service.submit("2026-Q4")
    assert (outcome.state, outcome.revision) == (SUBMITTED_NOW, 1)
    (report,) = hub.received
    expected = compute(load_facts(known.office.store.ctx), parse_period("2026-Q4"))
    assert report.period == "2026-Q4"
    assert report.revision == 1
    assert report.generated == known.office.clock.t
    assert report.cells == expected
    assert outcome.cell_count == len(expected)
    (row,) = service.ledger.submissions("2026-Q4")
    assert (row.state, row.envelope, row.submitted_at) == ("submitted", None, known.office.clock.t)


async def test_late_case_bumps_the_revision_and_unchanged_is_not_resent(
    known: Known, hub: FakeHub
) -> None:
    """A late case in a submitted quarter sends revision 2; without changes nothing is sent."""
    office = known.office
    service = make_service(office, hub)
    assert (await service.submit("2026-Q4")).revision == 1
    again = await service.submit("2026-Q4")
    assert (again.state, again.revision, hub.calls) == (UNCHANGED, 1, 1)
    add_case(office, opened="2026-11-03", gender="male", birth_year=1985, entry_month="2015-05")
    bumped = await service.submit("2026-Q4")
    assert (bumped.state, bumped.revision) == (SUBMITTED_NOW, 2)
    first, second = hub.received
    total = {
        r.revision: next(c.count for c in r.cells if c.measure == "cases_active" and not c.dims)
        for r in (first, second)
    }
    assert total == {1: 4, 2: 5}
    assert [s.revision for s in service.ledger.submissions("2026-Q4")] == [1, 2]


async def test_scheduled_run_sends_due_periods_once_then_revisions_only(
    known: Known, hub: FakeHub
) -> None:
    """Automatic runs: due ended periods go out once; a late entry re-sends only its periods."""
    office = known.office
    settings = StatsSettings(periods=("quarter", "year"), submit_after_days=5)
    service = make_service(office, hub, settings)
    set_today(office, "2027-01-03")  # Q4 and 2026 ended, but within the 5-day grace
    assert [o.period for o in await service.run_due()] == ["2026-Q1", "2026-Q2", "2026-Q3"]
    set_today(office, "2027-01-06")  # 2026-12-31 + 5 days passed
    assert [o.period for o in await service.run_due()] == ["2026-Q4", "2026"]
    assert await service.run_due() == []
    add_case(office, opened="2026-11-03", gender="male", birth_year=1985, entry_month="2015-05")
    again = await service.run_due()
    assert [(o.period, o.revision) for o in again] == [("2026-Q4", 2), ("2026", 2)]
    assert await service.run_due() == []
    assert hub.calls == 7


async def test_unreachable_hub_queues_and_the_retry_sends_the_same_bytes(
    known: Known, hub: FakeHub
) -> None:
    """Hub down: the sealed report stays pending with backoff and is later sent byte for byte."""
    office = known.office
    service = make_service(office, hub)
    hub.down = True
    queued = await service.submit("2026-11")
    assert (queued.state, queued.revision) == (QUEUED, 1)
    (row,) = service.ledger.submissions("2026-11")
    assert row.state == "pending"
    assert row.envelope is not None
    assert office.clock.t < row.next_attempt <= office.clock.t + 60
    sealed = row.envelope
    hub.down = False
    assert await service.run_due() != []  # other due periods go out; 2026-11 waits its backoff
    assert "2026-11" not in {r.period for r in hub.received}
    office.clock.advance(61)
    await service.run_due()
    assert sealed in hub.envelopes
    assert [r.revision for r in hub.received if r.period == "2026-11"] == [1]
    assert service.ledger.latest("2026-11").state == "submitted"  # type: ignore[union-attr]


async def test_backoff_grows_while_the_hub_stays_down(office: Office, hub: FakeHub) -> None:
    """Each failed retry waits at most 60 s * 2**(n-1), capped by the check interval."""
    add_case(office, opened="2026-10-01", gender="female", birth_year=1990, entry_month="2020-01")
    service = make_service(office, hub, StatsSettings(auto_submit=False, retry_min=60))
    hub.down = True
    await service.submit("2026-10")
    ceilings = []
    for attempt in range(2, 9):
        office.clock.t = service.ledger.latest("2026-10").next_attempt  # type: ignore[union-attr]
        await service.run_due()
        row = service.ledger.latest("2026-10")
        assert row is not None
        assert row.attempts == attempt
        ceilings.append(row.next_attempt - office.clock.t)
    assert all(
        0 < c <= min(3600, 60 * 2 ** (a - 1)) for a, c in zip(range(2, 9), ceilings, strict=True)
    )
    assert hub.calls == 8


async def test_refused_report_is_not_retried_automatically(known: Known, hub: FakeHub) -> None:
    """A 4xx from the hub settles the revision as rejected; only new data or a person retries."""
    office = known.office
    service = make_service(office, hub, StatsSettings(periods=("month",)))
    hub.refuse = "inconsistent-report"
    out = await service.submit("2026-12")
    assert out.state == "rejected"
    assert "inconsistent-report" in (out.detail or "")
    hub.refuse = None
    assert "2026-12" not in {o.period for o in await service.run_due()}
    manual = await service.submit("2026-12")
    assert (manual.state, manual.revision) == (SUBMITTED_NOW, 2)


async def test_expired_pending_envelope_is_resealed_under_the_same_revision(
    known: Known, hub: FakeHub
) -> None:
    """A report queued longer than the message TTL is resealed (new id), revision unchanged."""
    office = known.office
    service = make_service(office, hub)
    hub.down = True
    await service.submit("2026-10")
    old = service.ledger.latest("2026-10")
    assert old is not None
    office.clock.advance(15 * 86400)
    hub.down = False
    out = await service.submit("2026-10")
    assert (out.state, out.revision) == (SUBMITTED_NOW, 1)
    assert old.envelope not in hub.envelopes
    assert service.ledger.latest("2026-10").msg_id != old.msg_id  # type: ignore[union-attr]


async def test_open_period_bad_period_and_not_enrolled_are_refused(hub: FakeHub) -> None:
    """Only ended periods of a valid form are sent, and only by an enrolled node."""
    office = make_office("caritas-nbg")
    set_today(office, "2026-11-15")
    service = make_service(office, hub)
    with pytest.raises(PeriodNotOver):
        await service.submit("2026-11")
    with pytest.raises(BadPeriod):
        await service.submit("2026-13")
    with pytest.raises(BadPeriod):
        await service.preview("2026-Q5")
    assert (await service.preview("2026-11"))["complete"] is False
    office.store.close()
    bare = make_office("awo-fue", enrolled=False)
    set_today(bare, "2026-11-15")
    with pytest.raises(NotEnrolled):
        await make_service(bare, hub).submit("2026-10")
    assert await make_service(bare, hub).run_due() == []
    bare.store.close()
    assert hub.calls == 0


async def test_scheduler_runs_in_the_background_and_stops(known: Known, hub: FakeHub) -> None:
    """The task runs a round at start without blocking, logs no personal data, stops cleanly."""
    service = make_service(known.office, hub, StatsSettings(periods=("year",)))
    scheduler = StatsScheduler(service, known.office.clock)
    with capture_logs() as logs:
        await scheduler.start()
        for _ in range(200):
            if scheduler.rounds:
                break
            await asyncio.sleep(0.01)
        await scheduler.stop()
    assert scheduler.rounds == 1
    assert [r.period for r in hub.received] == ["2026"]
    events = {e["event"] for e in logs}
    assert {"stats.sealed", "stats.submitted"} <= events
    assert all("cells" not in e or isinstance(e["cells"], int) for e in logs)
    assert not any(v == "SY" or v == "female" for e in logs for v in e.values())


def test_ts_helper_is_noon_utc() -> None:
    """The fixture's dates are noon UTC (so local-date conversion cannot shift the day)."""
    assert ts("2026-10-01") % 86400 == 12 * 3600


@pytest.mark.parametrize("problem", ["clock-skew", "bad-signature", "revoked-node"])
async def test_a_refusal_about_the_node_keeps_reports_pending(
    known: Known, hub: FakeHub, problem: str
) -> None:
    """A refusal that concerns this node (its clock, keys or enrollment) is not a verdict
    on the report: the round stops, every report stays pending, and once the cause is
    fixed they go out; none is rejected for good."""
    office = known.office
    service = make_service(office, hub)
    hub.refuse = problem
    first = await service.run_due()
    assert [o.state for o in first] == [QUEUED]  # the round stopped at the first refusal
    assert {s.state for s in service.ledger.submissions()} == {"pending"}
    hub.refuse = None
    office.clock.advance(3600)
    await service.run_due()
    states = {s.state for s in service.ledger.submissions()}
    assert states == {"submitted"}
    assert {r.period for r in hub.received} >= {first[0].period}


async def test_the_hubs_reason_is_kept_and_its_warning_can_be_dismissed(
    known: Known, hub: FakeHub
) -> None:
    """A refused report keeps the hub's reason; `stats dismiss` clears the status
    warning, and only for a refused newest revision."""
    office = known.office
    service = make_service(office, hub, StatsSettings(periods=("month",)))
    hub.refuse = "inconsistent-report"
    out = await service.submit("2026-12")
    assert "inconsistent-report: refused in the test" in (out.detail or "")
    latest = service.ledger.latest("2026-12")
    assert latest is not None
    assert latest.last_error == "inconsistent-report: refused in the test"
    assert "stats_rejected" in office.store.health().warnings()
    dismissed = service.ledger.dismiss("2026-12")
    assert dismissed.dismissed is not None
    assert "stats_rejected" not in office.store.health().warnings()
    with pytest.raises(InvalidInput, match="nothing to dismiss"):
        service.ledger.dismiss("2026-11")
