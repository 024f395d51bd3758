"""`mbe-node serve` runs on one clock: the sync worker gets the app's `Deps`."""

from __future__ import annotations

from typing import Any

from node.api.app import create_app
from node.cli import sync_background
from node.sync.worker import SYNC_WORKER
from tests.node.conftest import T0, ApiNode


async def test_the_serve_worker_runs_on_the_apps_clock(
    api_node: ApiNode, aiohttp_client: Any
) -> None:
    """Built as `mbe-node serve` builds it, the worker's clock and randomness are the app's."""
    fixed = api_node.deps
    app = create_app(api_node.settings, deps=fixed, background=sync_background(api_node.settings))
    await aiohttp_client(app)
    worker = app[SYNC_WORKER]
    assert worker.deps is fixed
    assert worker.deps.clock is fixed.clock
    api_node.clock.advance(3600)
    assert worker.deps.clock.now() == T0 + 3600
