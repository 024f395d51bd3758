"""Fixtures for the status views: an enrolled API node and a hand-made SyncHealth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.app import create_app
from node.storage.health import StatsLine, SyncHealth
from tests.node.conftest import T0, ApiNode, make_api_node

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def api_node(tmp_path: Path) -> ApiNode:
    return make_api_node(tmp_path)


@pytest.fixture
async def client(api_node: ApiNode, aiohttp_client: Any) -> Client:
    result: Client = await aiohttp_client(create_app(api_node.settings, deps=api_node.deps))
    return result


def health(**changes: Any) -> SyncHealth:
    """A healthy node's figures with distinctive numbers; override any of them."""
    base: dict[str, Any] = {
        "now": T0,
        "enrolled": True,
        "node_id": "caritas-nbg",
        "hub_url": "https://hub.example.org",
        "enrolled_at": T0 - 40 * 86400,
        "hub_reachable": True,
        "push_connected": True,
        "last_sync": T0 - 125,
        "last_error": None,
        "outbox_depth": 7,
        "oldest_unsent": T0 - 300,
        "outbox_rejected": 0,
        "inbox_awaiting": 5,
        "refused_messages": 3,
        "withdrawals_pending": 0,
        "directory_version": 42,
        "directory_expires": T0 + 29 * 86400,
        "stats": (
            StatsLine("2026-08", 2, "submitted", T0 - 10 * 86400),
            StatsLine("2026-Q2", 1, "pending", None),
        ),
        "sync_state": (("hub_reachable", "true"),),
    }
    return SyncHealth(**(base | changes))
