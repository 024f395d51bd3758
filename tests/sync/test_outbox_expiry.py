"""The worker never uploads an expired outbox message; it hands it to the store instead."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from node.sync.ports import OutgoingMessage
from node.sync.worker import SyncWorker
from support.clock import Clock, Deps, SystemClock
from tests.clocks import FakeClock, MidpointRandom
from tests.sync.fakehub import FakeHub
from tests.sync.helpers import Office, fast_settings, outgoing, sealed

Spawn = Callable[..., SyncWorker]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Workers with an injectable clock, stopped at teardown."""
    made: list[SyncWorker] = []

    def make(office: Office, clock: Clock | None = None) -> SyncWorker:
        deps = Deps(clock=clock or SystemClock(), random=MidpointRandom())
        w = SyncWorker(fast_settings(), office.store, office.keys, deps=deps)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.stop()


async def test_a_message_past_its_expiry_is_retired_not_uploaded(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """By the injected clock one message expired: outbox_expired, the other is uploaded."""
    now = int(time.time())
    stale = outgoing(office_a, office_b)
    stale = OutgoingMessage(stale.msg_id, stale.recipient, stale.envelope, now - 1)
    fresh = outgoing(office_a, office_b)
    office_a.store.put(stale)
    office_a.store.put(fresh)
    report = await spawn(office_a, clock=FakeClock(now)).sync_once()
    assert (report.expired, report.uploaded, report.rejected) == (1, 1, 0)
    assert office_a.store.expired == [stale.msg_id]
    assert office_a.store.rejected == {}
    assert hub.pending(office_b.node_id) == [fresh.msg_id]


async def test_a_message_the_hub_calls_expired_is_retired_not_flagged(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """The hub's clock says expired although ours did not: handled as an expiry."""
    msg_id, data = sealed(
        office_a.node_id,
        office_a.keys,
        office_b.node_id,
        office_b.public,
        created=int(time.time()) - 7200,
        ttl=3600,
    )
    office_a.store.put(OutgoingMessage(msg_id, office_b.node_id, data, int(time.time()) + 3600))
    report = await spawn(office_a).sync_once()
    assert (report.expired, report.rejected) == (1, 0)
    assert office_a.store.expired == [msg_id]
    assert office_a.store.rejected == {}
    assert office_a.store.outbox == {}


async def test_an_expiry_the_store_cannot_handle_yet_waits(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """outbox_expired says not yet: the message stays, is not uploaded, the rest goes."""
    now = int(time.time())
    stale = outgoing(office_a, office_b)
    stale = OutgoingMessage(stale.msg_id, stale.recipient, stale.envelope, now - 1)
    fresh = outgoing(office_a, office_b)
    office_a.store.put(stale)
    office_a.store.put(fresh)
    office_a.store.defer_expired.add(stale.msg_id)
    report = await spawn(office_a, clock=FakeClock(now)).sync_once()
    assert (report.expired, report.uploaded) == (0, 1)
    assert stale.msg_id in office_a.store.outbox
    assert hub.pending(office_b.node_id) == [fresh.msg_id]
