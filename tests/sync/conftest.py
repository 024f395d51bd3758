"""Fixtures: a fake hub served on a free loopback port and two enrolled offices."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpServer

from tests.sync.fakehub import FakeHub
from tests.sync.fakes import FakeStore
from tests.sync.helpers import Office, enrolled_office
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
