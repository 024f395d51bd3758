"""The sync worker under database faults: it reports, repairs and keeps running."""

from __future__ import annotations

import asyncio
import sqlite3

from node.sync.worker import SyncWorker
from tests.sync.fakehub import FakeHub, fixed_keys
from tests.sync.helpers import Office, eventually, fast_settings


async def test_a_failed_status_write_in_an_error_path_does_not_end_syncing(
    hub: FakeHub, office_b: Office
) -> None:
    """While the hub is down, recording the error fails (the database is locked by a
    CLI command, say); once the hub is back the worker syncs as if nothing happened."""
    real = office_b.store.set_sync_state
    failing = {"on": True}

    def locked(key: str, value: str) -> None:
        if failing["on"] and key in ("last_error", "hub_reachable", "push_connected"):
            raise sqlite3.OperationalError("database is locked")
        real(key, value)

    office_b.store.set_sync_state = locked  # type: ignore[method-assign]
    hub.outage = True
    worker = SyncWorker(fast_settings(poll_interval=0.05), office_b.store, office_b.keys)
    await worker.start()
    try:
        await eventually(lambda: len(hub.requests) >= 3)  # failures were recorded (or not)
        failing["on"] = False
        hub.outage = False
        await eventually(lambda: office_b.store.state.get("last_sync") is not None)
        await eventually(lambda: office_b.store.state.get("hub_reachable") == "true")
        assert all(not t.done() for t in worker._tasks)
    finally:
        await worker.stop()


async def test_a_directory_that_could_not_be_stored_is_fetched_again(
    hub: FakeHub, office_b: Office
) -> None:
    """One failed write of a new directory must not leave the worker holding a version
    the store lacks (its ETag would make every later fetch a 304)."""
    worker = SyncWorker(
        fast_settings(poll_interval=0.05, directory_refresh=0.1), office_b.store, office_b.keys
    )
    await worker.start()
    try:
        await eventually(lambda: office_b.store.state.get("last_sync") is not None)
        held = office_b.store.directory_version
        real = office_b.store.store_directory
        fails = {"n": 1}

        def flaky(version: int, data: bytes, etag: str | None) -> None:
            if fails["n"]:
                fails["n"] -= 1
                raise OSError("disk I/O error")
            real(version, data, etag)

        office_b.store.store_directory = flaky  # type: ignore[method-assign]
        hub.register("jmd-erlangen", fixed_keys(44).public)
        await hub.announce()
        await eventually(lambda: office_b.store.directory_version == held + 1)
        assert fails["n"] == 0
    finally:
        await worker.stop()


async def test_stop_records_push_disconnected_whatever_the_cache_says(
    hub: FakeHub, office_b: Office
) -> None:
    """A cancelled write of "true" may reach the database without the worker's cache
    learning of it; stopping still records "false"."""
    worker = SyncWorker(fast_settings(), office_b.store, office_b.keys)
    await worker.start()
    await asyncio.sleep(0)
    office_b.store.set_sync_state("push_connected", "true")
    await worker.stop()
    assert office_b.store.state["push_connected"] == "false"
