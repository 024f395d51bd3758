"""What a sync cycle leaves out when it may: the inbox fetch of an outbox-only cycle
while push is up, and a `last_sync` record per cycle (issue 11)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from node.clock import Deps, SystemRandom
from node.sync.settings import SyncSettings
from node.sync.worker import LAST_SYNC_EVERY, SyncWorker
from tests.sync.fakehub import FakeHub
from tests.sync.helpers import Office, eventually, fast_settings, outgoing, sealed

Spawn = Callable[..., SyncWorker]
FETCH = ("GET", "/v1/inbox")


@dataclass
class OffsetClock:
    """The system clock moved by `offset` seconds (the fake hub allows some skew)."""

    offset: int = 0

    def now(self) -> int:
        return int(time.time()) + self.offset

    def today(self) -> str:
        return dt.datetime.fromtimestamp(self.now(), dt.UTC).date().isoformat()


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    made: list[SyncWorker] = []

    def make(office: Office, settings: SyncSettings, deps: Deps | None = None) -> SyncWorker:
        worker = SyncWorker(settings, office.store, office.keys, deps=deps)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        await worker.stop()


async def _started(office: Office, worker: SyncWorker, *, push: bool) -> None:
    await worker.start()
    if push:
        await eventually(lambda: worker.push_connected)
    await eventually(lambda: office.store.state.get("last_sync") is not None)
    await asyncio.sleep(0.1)  # the cycle the push connection asked for has ended


async def test_an_outbox_cycle_with_push_up_does_not_ask_for_mail(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    worker = spawn(office_a, fast_settings(poll_interval=30.0))
    await _started(office_a, worker, push=True)
    fetches = hub.requests.count(FETCH)
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    worker.wake()
    await eventually(lambda: hub.pending(office_b.node_id) == [msg.msg_id], timeout=3.0)
    await asyncio.sleep(0.1)
    assert hub.requests.count(FETCH) == fetches
    # Mail announced on the channel is still fetched at once.
    msg_id, data = sealed(office_b.node_id, office_b.keys, office_a.node_id, office_a.public)
    await hub.deliver(office_a.node_id, data, msg_id)
    await eventually(lambda: hub.requests.count(FETCH) > fetches, timeout=3.0)


async def test_without_push_every_cycle_asks_for_mail(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    worker = spawn(office_a, fast_settings(poll_interval=30.0, push=False))
    await _started(office_a, worker, push=False)
    fetches = hub.requests.count(FETCH)
    office_a.store.put(outgoing(office_a, office_b))
    worker.wake()
    await eventually(lambda: hub.requests.count(FETCH) == fetches + 1, timeout=3.0)


async def test_last_sync_is_recorded_at_most_every_few_seconds(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    clock = OffsetClock()
    deps = Deps(clock=clock, random=SystemRandom())
    worker = spawn(office_a, fast_settings(poll_interval=30.0, push=False), deps)
    await _started(office_a, worker, push=False)
    first = office_a.store.state["last_sync"]
    fetches = hub.requests.count(FETCH)
    clock.offset = 2  # a later second, within LAST_SYNC_EVERY of the record
    worker.wake()
    await eventually(lambda: hub.requests.count(FETCH) == fetches + 1, timeout=3.0)
    await asyncio.sleep(0.1)
    assert office_a.store.state["last_sync"] == first
    clock.offset = LAST_SYNC_EVERY + 1
    worker.wake()
    await eventually(lambda: office_a.store.state["last_sync"] != first, timeout=3.0)
    assert int(office_a.store.state["last_sync"]) >= int(first) + LAST_SYNC_EVERY


async def test_a_mail_cycle_still_uploads_what_waits_after_applying(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """A cycle woken by mail fetches first and uploads after applying: a message
    put into the outbox without wake() goes up with it, not a poll later."""
    worker = spawn(office_a, fast_settings(poll_interval=30.0))
    await _started(office_a, worker, push=True)
    waiting = outgoing(office_a, office_b)
    office_a.store.put(waiting)  # no wake()
    msg_id, data = sealed(office_b.node_id, office_b.keys, office_a.node_id, office_a.public)
    await hub.deliver(office_a.node_id, data, msg_id)
    await eventually(lambda: len(office_a.store.applied) == 1, timeout=3.0)
    await eventually(lambda: waiting.msg_id in hub.pending(office_b.node_id), timeout=3.0)
