"""Fixtures for the node's statistics: a store with known cases, a fake hub uplink."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from node.stats.service import Connect, StatsService, Uplink
from node.stats.settings import StatsSettings
from node.sync.errors import HubRefused, HubUnreachable
from node.sync.ports import EnrollmentState
from protocol.envelope import Envelope, open_envelope
from protocol.ids import HUB_ID
from protocol.payloads import StatsReport
from tests.node.conftest import HUB, FakeClock, Office, keys_from, make_office

NODE = "caritas-nbg"


def ts(date: str, hour: int = 12) -> int:
    """Unix seconds at `hour` UTC on `date` (noon: the same local date in any European zone)."""
    d = dt.date.fromisoformat(date)
    return calendar.timegm((d.year, d.month, d.day, hour, 0, 0))


def set_today(office: Office, date: str) -> None:
    office.clock.t = ts(date)


def add_case(
    office: Office,
    *,
    opened: str,
    closed: str | None = None,
    reason: str = "goals_achieved",
    contacts: tuple[tuple[str, str], ...] = (),
    agreement: str | None = None,
    **fields: object,
) -> str:
    """A case through the store's own API, with contacts, agreement and closure."""
    data: dict[str, object] = {"case_type": "short_counselling", "pseudonym": "P", **fields}
    data["opened"] = opened
    case_id = office.store.cases.create(data)
    for date, channel in contacts:
        office.store.cases.add_contact(case_id, {"date": date, "channel": channel, "minutes": 30})
    if agreement is not None:
        goals = [{"goal": "Ziel", "measure": "Maßnahme", "status": "open"}]
        office.store.cases.add_agreement(case_id, agreement, goals)
    if closed is not None:
        office.store.cases.close(case_id, reason, closed)
    return case_id


def add_referral(
    office: Office,
    case_id: str,
    target: str,
    sent: str,
    *,
    accepted: str | None = None,
    withdrawn_in_error: bool = False,
) -> str:
    """An outgoing referral as the store records it (row plus its events).

    Written directly: the consent gate and sealing are tested in tests/node and
    have no influence on what the statistics count.
    """
    n = office.store.ctx.one("SELECT COUNT(*) AS n FROM referrals")
    ref_id = f"{(n['n'] if n else 0) + 1:032x}"
    ctx = office.store.ctx
    ctx.run(
        "INSERT INTO referrals (id, direction, peer, case_id, target_type, fields, state,"
        " offer_msg_id, created, updated)"
        " VALUES (?, 'out', 'awo-fue', ?, ?, '[]', 'sent', ?, ?, ?)",
        (ref_id, case_id, target, ref_id, ts(sent), ts(sent)),
    )
    events: list[tuple[str, str, str, str | None]] = [("send", "sent", sent, None)]
    if accepted is not None:
        events += [
            ("receipt", "delivered", accepted, None),
            ("accepted", "accepted", accepted, None),
        ]
    if withdrawn_in_error:
        events.append(("withdraw", "withdrawn", sent, "sent_in_error"))
    for event, state, date, reason in events:
        ctx.run(
            "INSERT INTO referral_events (referral_id, direction, event, state, at, reason)"
            " VALUES (?, 'out', ?, ?, ?, ?)",
            (ref_id, event, state, ts(date), reason),
        )
    return ref_id


@dataclass
class Known:
    office: Office
    ids: dict[str, str] = field(default_factory=dict)


def build_known(office: Office) -> Known:
    """The fixture of docs/statistics.md's examples: five cases, four referrals, Q4 2026."""
    k = Known(office)
    k.ids["A"] = add_case(
        office,
        opened="2026-10-05",
        closed="2026-11-20",
        reason="goals_achieved",
        case_type="case_management",
        agreement="2026-10-10",
        contacts=(("2026-10-06", "in_person"), ("2026-11-02", "phone")),
        gender="female",
        birth_year=1990,
        nationality="SY",
        residence_status="residence_permit",
        entry_month="2021-04",
        topics=["housing", "language_course"],
        family_members=2,
    )
    k.ids["B"] = add_case(
        office,
        opened="2026-09-01",
        contacts=(("2026-09-02", "phone"), ("2026-10-15", "in_person")),
        gender="male",
        birth_year=2001,
        nationality="UA",
        residence_status="toleration",
        entry_month="2026-03",
        topics=["housing"],
    )
    k.ids["C"] = add_case(
        office,
        opened="2026-11-10",
        case_type="case_management",
        contacts=(("2026-12-01", "video"),),
        gender="female",
        birth_year=1950,
        entry_month="2026-11",
        family_members=1,
    )
    k.ids["D"] = add_case(
        office,
        opened="2026-01-10",
        closed="2026-08-31",
        reason="contact_lost",
        contacts=(("2026-02-01", "phone"),),
        gender="male",
        birth_year=1980,
        nationality="DE",
        residence_status="naturalised",
        entry_month="2010-01",
        topics=["debt"],
    )
    k.ids["E"] = add_case(
        office,
        opened="2026-12-20",
        closed="2026-12-30",
        reason="moved",
        case_type="case_management",
        agreement="2027-01-05",
        gender="diverse",
        birth_year=1960,
        nationality="TR",
        residence_status="settlement_permit",
        entry_month="2024-12",
        topics=["health", "housing"],
    )
    add_referral(office, k.ids["A"], "jobcenter", "2026-10-20", accepted="2026-10-25")
    add_referral(office, k.ids["B"], "debt_counselling", "2026-11-05")
    add_referral(office, k.ids["B"], "mbe", "2026-11-06", withdrawn_in_error=True)
    add_referral(office, k.ids["A"], "jobcenter", "2026-09-25", accepted="2026-10-02")
    return k


@pytest.fixture
def office() -> Iterator[Office]:
    o = make_office(NODE)
    set_today(o, "2027-01-20")
    yield o
    o.store.close()


@pytest.fixture
def known(office: Office) -> Known:
    return build_known(office)


@dataclass
class FakeHub:
    """Stands in for POST /v1/stats: opens each envelope with the hub's key, like the hub."""

    clock: FakeClock
    down: bool = False
    refuse: str | None = None
    received: list[StatsReport] = field(default_factory=list)
    envelopes: list[bytes] = field(default_factory=list)
    calls: int = 0

    async def submit_stats(self, envelope: bytes) -> tuple[str, int]:
        self.calls += 1
        if self.down:
            raise HubUnreachable("the hub at http://hub.test is not reachable: refused")
        if self.refuse is not None:
            raise HubRefused(self.refuse, "refused in the test", 422)
        env = Envelope.decode(envelope)
        inner = open_envelope(env, HUB, HUB_ID, keys_from(NODE).public, now=self.clock.t)
        assert isinstance(inner.payload, StatsReport)
        self.envelopes.append(envelope)
        self.received.append(inner.payload)
        return inner.payload.period, inner.payload.revision

    def connect(self) -> Connect:
        @asynccontextmanager
        async def connect(enrollment: EnrollmentState) -> AsyncIterator[Uplink]:
            yield self

        return connect


@pytest.fixture
def hub(office: Office) -> FakeHub:
    return FakeHub(clock=office.clock)


def make_service(
    office: Office, hub: FakeHub, settings: StatsSettings | None = None
) -> StatsService:
    return StatsService(
        office.store.ctx,
        settings or StatsSettings(),
        connect=hub.connect(),
        load_enrollment=office.store.network.load_enrollment,
    )
