"""Directory frames on the push channel: a new office is usable at once, not in an hour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from node.sync.settings import SyncSettings
from node.sync.worker import SyncWorker
from protocol.hub_api import DirectoryFrame, MailFrame, decode_push_frame, push_frame
from tests.sync.fakehub import FakeHub, fixed_keys
from tests.sync.helpers import Office, eventually, fast_settings

Spawn = Callable[..., SyncWorker]
# Long enough that only a push frame can explain a refresh within a test.
SLOW = {"poll_interval": 30.0, "directory_refresh": 3600.0}


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Create workers and stop every one of them at teardown."""
    made: list[SyncWorker] = []

    def make(office: Office, settings: SyncSettings | None = None) -> SyncWorker:
        w = SyncWorker(settings or fast_settings(**SLOW), office.store, office.keys)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.stop()


async def _idle(hub: FakeHub, office: Office, worker: SyncWorker) -> int:
    """Start the worker, wait for its first cycle and push link; return directory fetches."""
    await worker.start()
    await eventually(lambda: worker.push_connected)
    await eventually(lambda: office.store.state.get("last_sync") is not None)
    await asyncio.sleep(0.05)
    return hub.requests.count(("GET", "/v1/directory"))


async def test_announced_version_is_fetched_at_once(
    hub: FakeHub, office_b: Office, spawn: Spawn
) -> None:
    """A directory frame with a newer version makes the worker refresh without waiting."""
    worker = spawn(office_b)
    await _idle(hub, office_b, worker)
    held = office_b.store.directory_version
    hub.register("jmd-erlangen", fixed_keys(44).public)
    await hub.announce()
    took = await eventually(lambda: office_b.store.directory_version == held + 1, timeout=3.0)
    assert took < 3.0
    assert office_b.store.state["directory_version"] == str(held + 1)


async def test_known_version_is_not_fetched_again(
    hub: FakeHub, office_b: Office, spawn: Spawn
) -> None:
    """A frame announcing the version already held (or an older one) costs no request."""
    worker = spawn(office_b)
    fetches = await _idle(hub, office_b, worker)
    await hub.announce(office_b.store.directory_version)
    await hub.announce(1)
    await asyncio.sleep(0.3)
    assert hub.requests.count(("GET", "/v1/directory")) == fetches


async def test_version_published_while_disconnected_is_fetched_on_reconnect(
    hub: FakeHub, office_b: Office, spawn: Spawn
) -> None:
    """The version announced on (re)connect catches up what was published meanwhile."""
    worker = spawn(office_b)
    await _idle(hub, office_b, worker)
    held = office_b.store.directory_version
    hub.register("jmd-erlangen", fixed_keys(44).public)  # published, but not announced
    await asyncio.sleep(0.2)
    assert office_b.store.directory_version == held
    for ws in list(hub.sockets[office_b.node_id]):
        await ws.close()
    await eventually(lambda: office_b.store.directory_version == held + 1, timeout=5.0)
    assert hub.requests.count(("GET", "/v1/ws")) >= 2


def test_unusable_push_frames_announce_nothing() -> None:
    """Malformed, typeless, unknown or odd-valued frames decode to nothing at all."""
    for bad in (
        "not json",
        "[1, 2]",
        '{"version": 5}',
        '{"type": "directory", "version": true}',
        '{"type": "directory", "version": -3}',
        '{"type": "directory", "version": "7"}',
        '{"type": "directory"}',
        '{"type": "shutdown"}',
    ):
        assert decode_push_frame(bad) is None, bad
    assert decode_push_frame('{"type": "directory", "version": 7}') == DirectoryFrame(version=7)
    assert decode_push_frame('{"type": "mail"}') == MailFrame()
    # A newer hub may add fields; the frame still counts.
    assert decode_push_frame('{"type": "mail", "count": 3}') == MailFrame()
    assert push_frame(DirectoryFrame(version=7)) == '{"type":"directory","version":7}'
