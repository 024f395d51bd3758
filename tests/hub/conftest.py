"""Fixtures: a hub data directory, a fake clock, the hub app under a test client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from hub.app import create_app
from hub.context import PUBLISHER
from hub.keyfile import read_keys, write_keys
from hub.settings import HubSettings, load_settings
from hub.sites import NewSite, add_site
from protocol.keys import PrivateKeys
from tests.clocks import FakeClock as FakeClock  # re-exported: hub tests import it from here
from tests.clocks import clocked
from tests.hub.client import HubClient, Node, enroll
from tests.hub.engines import database_table, hub_db

START = 1_800_000_000


def write_hub_dir(path: Path, config: str) -> HubSettings:
    """A hub data directory as `mbe-hub init` makes it (fresh keys), with `config` as hub.toml."""
    path.mkdir(parents=True, exist_ok=True)
    write_keys(path / "hub.key", PrivateKeys.generate())
    (path / "hub.toml").write_text(config, encoding="utf-8")
    return load_settings(path)


def init_data_dir(path: Path, extra: str = "") -> HubSettings:
    """What `mbe-hub init` creates, with test-friendly settings."""
    return write_hub_dir(
        path,
        'region = "Testregion"\npublic_url = "http://127.0.0.1:1"\nlog_level = "debug"\n'
        + extra
        + "\n[relay]\nexpiry_interval = 3600.0\nmax_batch = 50\nmax_body = 1048576\n",
    )


@dataclass
class Hub:
    settings: HubSettings
    clock: FakeClock
    app: web.Application
    http: TestClient[web.Request, web.Application]

    def add_site(self, name: str, **kw: object) -> NewSite:
        """Add a site through a second connection, as the CLI in another process would."""
        db = hub_db(self.settings)
        try:
            return add_site(
                db,
                read_keys(self.settings.key_path),
                self.settings,
                name=name,
                org=str(kw.get("org", "Caritas")),
                services=list(kw.get("services", ["mbe"])),  # type: ignore[call-overload]  # test kwargs
                languages=list(kw.get("languages", ["de"])),  # type: ignore[call-overload]  # test kwargs
                area=str(kw.get("area", "Köln")),
                now=self.clock.now(),
                secret=int.from_bytes(os.urandom(8), "big") >> 4,
            )
        finally:
            db.close()

    async def node(self, name: str) -> Node:
        """A new site, enrolled, once the directory version listing it is published."""
        node = await enroll(self.http, self.add_site(name).code)
        await self.app[PUBLISHER].flush()
        return node

    def client(self, node: Node) -> HubClient:
        return HubClient(self.http, node, self.clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> HubSettings:
    return init_data_dir(tmp_path / "hub", database_table(engine, request))


@pytest.fixture
async def hub(settings: HubSettings, clock: FakeClock, aiohttp_client: AiohttpClient) -> Hub:
    app = create_app(settings, deps=clocked(clock))
    http = await aiohttp_client(app)
    return Hub(settings, clock, app, http)
