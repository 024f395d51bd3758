"""The node database lives on one thread in the server (node/storage/thread.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.app import create_app
from node.api.keys import STORE
from node.clock import Deps
from node.storage.store import NodeStore
from tests.node.conftest import keys_from, make_api_node

Client = TestClient[web.Request, web.Application]


async def test_the_loop_keeps_serving_while_the_database_is_busy(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """A slow database job (a long fsync, a big transaction) holds only its thread:
    the API answers requests that need no database meanwhile, and requests that
    do need it wait for it rather than failing."""
    node = make_api_node(tmp_path, "awo-fue")
    client: Client = await aiohttp_client(create_app(node.settings, deps=node.deps))
    store = client.app[STORE]
    busy = asyncio.ensure_future(store.run(time.sleep, 1.5))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert (await client.get("/health")).status == 200
    assert time.monotonic() - started < 1.0
    status = await client.get("/api/v1/status", headers=node.auth)
    assert status.status == 200
    assert busy.done()
    await busy


async def test_all_work_of_the_server_runs_on_the_database_thread(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """The connection belongs to the database thread: using it from the event loop
    fails loudly, so a code path that forgot to hop cannot race."""
    node = make_api_node(tmp_path, "awo-fue")
    client: Client = await aiohttp_client(create_app(node.settings, deps=node.deps))
    store = client.app[STORE]
    with pytest.raises(sqlite3.ProgrammingError):
        store.db.execute("SELECT 1")
    names = await store.run(lambda: threading.current_thread().name)
    assert names.startswith("node-db")
    assert names != threading.current_thread().name


def test_a_store_without_a_thread_runs_inline(tmp_path: Path) -> None:
    """The CLI's store is used on the caller's thread; `run` calls right there."""
    store = NodeStore.open(tmp_path / "n.db", keys_from("awo-fue"), Deps.system(), message_ttl=60)
    try:
        here = threading.current_thread().name
        assert asyncio.run(store.run(lambda: threading.current_thread().name)) == here
    finally:
        store.close()


def test_a_threaded_store_closes_its_thread(tmp_path: Path) -> None:
    store = NodeStore.open_threaded(
        tmp_path / "n.db", keys_from("awo-fue"), Deps.system(), message_ttl=60
    )
    ident = asyncio.run(store.run(threading.get_ident))
    assert ident in {t.ident for t in threading.enumerate()}
    assert ident != threading.get_ident()
    store.close()
    assert ident not in {t.ident for t in threading.enumerate()}
