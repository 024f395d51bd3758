"""Directory versions for enrollments: published after the answer, one per interval.

An enrollment answers with the newest version and asks this process's
publisher (hub/publisher.py) for the version that lists the new site. The
first request is served at once; those within `directory.publish_interval` of
the last publication share one version. What a stopped process owed is
published at the next start and by a maintenance pass.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from hub import maintenance, publisher
from hub.app import create_app
from hub.context import PUBLISHER
from hub.directory import latest
from hub.enrollment import enroll as enroll_in_db
from hub.errors import ConfigError
from hub.keyfile import read_keys
from hub.settings import HubSettings
from hub.sites import add_site
from protocol.documents import Directory
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.keys import PrivateKeys
from tests.clocks import clocked
from tests.hub.client import enroll
from tests.hub.conftest import FakeClock, Hub, init_data_dir
from tests.hub.engines import database_table, hub_db


def _newest(hub: Hub) -> Directory:
    db = hub_db(hub.settings)
    try:
        current = latest(db)
    finally:
        db.close()
    assert current is not None
    return Directory.verify(current.data, read_keys(hub.settings.key_path).public, now=0)


def _listed(directory: Directory) -> set[str]:
    return {o.node_id for o in directory.offices}


@pytest.fixture
async def slow_hub(
    tmp_path: Path,
    engine: str,
    request: pytest.FixtureRequest,
    clock: FakeClock,
    aiohttp_client: AiohttpClient,
) -> Hub:
    """A hub that publishes at most one version a minute for enrollments."""
    settings = init_data_dir(
        tmp_path / "hub",
        database_table(engine, request) + "\n[directory]\npublish_interval = 60\n",
    )
    app = create_app(settings, deps=clocked(clock))
    return Hub(settings, clock, app, await aiohttp_client(app))


async def test_enrollments_within_the_interval_share_one_version(slow_hub: Hub) -> None:
    """The first enrollment is listed at once; the next ones wait for the interval
    and then appear together in one version."""
    hub = slow_hub
    first = await enroll(hub.http, hub.add_site("Erste Stelle").code)
    for _ in range(500):  # the publisher runs right after the answer
        if first.node_id in _listed(_newest(hub)):
            break
        await asyncio.sleep(0.01)
    listed_first = _newest(hub)
    assert _listed(listed_first) == {first.node_id}
    others = [await enroll(hub.http, hub.add_site(f"Stelle {i}").code) for i in range(3)]
    await asyncio.sleep(0.3)
    assert _newest(hub).version == listed_first.version  # within the interval: not yet
    assert hub.app[PUBLISHER].pending == 3
    version = await hub.app[PUBLISHER].flush()  # what the interval's end does
    newest = _newest(hub)
    assert version == newest.version > listed_first.version
    assert _listed(newest) == {first.node_id} | {n.node_id for n in others}
    assert hub.app[PUBLISHER].pending == 0


async def test_an_enrollment_during_a_publication_is_published_next_without_delay(
    tmp_path: Path,
    engine: str,
    request: pytest.FixtureRequest,
    clock: FakeClock,
    aiohttp_client: AiohttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With publish_interval 0, a site asked for while a version is being made is
    listed by the next version at once, not after the pause that follows a failure."""
    settings = init_data_dir(
        tmp_path / "hub",
        database_table(engine, request) + "\n[directory]\npublish_interval = 0\n",
    )
    app = create_app(settings, deps=clocked(clock))
    hub = Hub(settings, clock, app, await aiohttp_client(app))
    later = _enrolled_without_publication(settings, "Spaete Stelle", clock.now())
    loop = asyncio.get_running_loop()
    real = publisher.publish_due
    asked: list[set[str]] = []

    def asked_meanwhile(*args: Any) -> int | None:
        asked.append(set(args[-1]))
        if len(asked) == 1:  # the other enrollment's request arrives during the first
            loop.call_soon_threadsafe(hub.app[PUBLISHER].due, later)
        return real(*args)

    monkeypatch.setattr(publisher, "publish_due", asked_meanwhile)
    first = await enroll(hub.http, hub.add_site("Erste Stelle").code)
    started = loop.time()
    while len(asked) < 2:
        assert loop.time() - started < publisher.RETRY_S / 2, "the next publication waited"
        await asyncio.sleep(0.01)
    assert asked == [{first.node_id}, {later}]
    assert {first.node_id, later} <= _listed(_newest(hub))


async def test_a_failed_publication_keeps_its_sites_for_the_next_try(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publication the database refuses is logged; the publisher keeps running, its
    sites stay due, and the next try lists them."""
    real = publisher.publish_due
    calls = 0

    def failing_once(*args: Any) -> int | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk gone")
        return real(*args)

    monkeypatch.setattr(publisher, "publish_due", failing_once)
    node = await enroll(hub.http, hub.add_site("Wackelige Stelle").code)
    for _ in range(500):  # until the failed try has put its site back
        if calls and hub.app[PUBLISHER].pending:
            break
        await asyncio.sleep(0.01)
    assert (calls, hub.app[PUBLISHER].pending) == (1, 1)
    assert node.node_id not in _listed(_newest(hub))
    assert await hub.app[PUBLISHER].flush() is not None  # the retry (RETRY_S later)
    assert node.node_id in _listed(_newest(hub))
    assert hub.app[PUBLISHER].pending == 0


def _enrolled_without_publication(settings: HubSettings, name: str, now: int) -> str:
    """A site enrolled by a hub process that stopped before its publisher ran."""
    db = hub_db(settings)
    try:
        keys = read_keys(settings.key_path)
        new = add_site(
            db,
            keys,
            settings,
            name=name,
            org="Caritas",
            services=["mbe"],
            languages=["de"],
            area="",
            now=now,
            secret=int.from_bytes(os.urandom(8), "big") >> 4,
        )
        body = EnrollmentRequest.create(
            EnrollmentCode.parse(new.code), PrivateKeys.generate()
        ).encode()
        node_id, _ = enroll_in_db(db, keys, settings, body, now)
        return node_id
    finally:
        db.close()


async def test_a_publication_owed_at_a_stop_is_made_at_the_next_start(
    settings: HubSettings, clock: FakeClock, aiohttp_client: AiohttpClient
) -> None:
    """The sites table lists an enrolled site no version lists: the hub publishes at start."""
    app = create_app(settings, deps=clocked(clock))
    hub = Hub(settings, clock, app, await aiohttp_client(app))
    node_id = _enrolled_without_publication(settings, "Vergessene Stelle", clock.now())
    assert node_id not in _listed(_newest(hub))
    await hub.http.close()  # stop that hub, start another on the same data
    app = create_app(settings, deps=clocked(clock))
    again = Hub(settings, clock, app, await aiohttp_client(app))
    assert node_id in _listed(_newest(again))


async def test_a_maintenance_pass_publishes_what_another_process_owed(hub: Hub) -> None:
    """While the hub runs, a pass finds an enrolled site no version lists and publishes;
    the next pass finds nothing to publish."""
    await hub.app[PUBLISHER].flush()
    before = _newest(hub).version
    node_id = _enrolled_without_publication(hub.settings, "Andere Stelle", hub.clock.now())
    await maintenance.run_once(hub.app, hub.clock.now())
    newest = _newest(hub)
    assert node_id in _listed(newest)
    assert newest.version > before
    await maintenance.run_once(hub.app, hub.clock.now())
    assert _newest(hub).version == newest.version


@pytest.mark.parametrize("value", ["-1", "3601", "1.5", '"1"'])
def test_publish_interval_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"directory\.publish_interval"):
        init_data_dir(tmp_path / "hub", f"\n[directory]\npublish_interval = {value}\n")
