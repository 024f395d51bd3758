"""Fixtures: the in-process hub of tests/hub with a fake clock, and enrolled offices."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from hub.app import create_app
from hub.settings import HubSettings
from tests.clocks import clocked
from tests.hub.conftest import START, FakeClock, Hub, init_data_dir


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> HubSettings:
    return init_data_dir(tmp_path / "hub", "\n[directory]\nkey_overlap = 3600\n")


@pytest.fixture
async def hub(settings: HubSettings, clock: FakeClock, aiohttp_client: AiohttpClient) -> Hub:
    app = create_app(settings, deps=clocked(clock))
    http = await aiohttp_client(app)
    return Hub(settings, clock, app, http)
