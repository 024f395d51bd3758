"""Fixtures: a fake hub served on a free loopback port and two enrolled offices."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from pytest_aiohttp import AiohttpServer

from node.sync.settings import SyncSettings
from node.sync.worker import SyncWorker
from support.clock import Deps, SystemClock
from tests.clocks import MidpointRandom
from tests.sync.fakehub import FakeHub
from tests.sync.fakes import FakeStore
from tests.sync.helpers import Office, enrolled_office, fast_settings
from tests.sync.hubfarm import HubProcess, serve_process


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture
async def hub_url(hub: FakeHub, aiohttp_server: AiohttpServer) -> str:
    server = await aiohttp_server(hub.app(), host="127.0.0.1")
    return str(server.make_url("/")).rstrip("/")


@pytest.fixture
def events() -> list[tuple[object, ...]]:
    """One event log shared by office B's store and the hub, to check ordering."""
    return []


@pytest.fixture
def office_a(hub: FakeHub, hub_url: str) -> Office:
    return enrolled_office(hub, hub_url, "awo-fuerth", 10, FakeStore())


@pytest.fixture
def office_b(hub: FakeHub, hub_url: str, events: list[tuple[object, ...]]) -> Office:
    hub.events = events
    return enrolled_office(hub, hub_url, "caritas-nuernberg", 20, FakeStore(events=events))


# Two processes of one fake hub (tests/sync/hubfarm.py): the tests of several hub URLs.
@pytest.fixture
async def p1(hub: FakeHub, aiohttp_server: AiohttpServer) -> HubProcess:
    return await serve_process(hub, aiohttp_server)


@pytest.fixture
async def p2(hub: FakeHub, aiohttp_server: AiohttpServer) -> HubProcess:
    return await serve_process(hub, aiohttp_server)


Spawn = Callable[..., SyncWorker]
# Real time; backoff jitter just above 0.5, fresh nonces.
_DEPS = Deps(clock=SystemClock(), random=MidpointRandom())


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Create workers (jitter just above 0.5) and stop every one of them at teardown
    (tests with workers of their own kind define their own `spawn`)."""
    made: list[SyncWorker] = []

    def make(office: Office, settings: SyncSettings | None = None) -> SyncWorker:
        w = SyncWorker(settings or fast_settings(), office.store, office.keys, deps=_DEPS)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.stop()
