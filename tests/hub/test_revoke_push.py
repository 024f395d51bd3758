"""A revoked node loses its push WebSocket at once and cannot open a new one (issue 10)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from pytest_aiohttp import AiohttpClient

import hub.app
import hub.handlers
import hub.push
from hub.app import create_app
from hub.context import ANNOUNCER, PUSH
from hub.keyfile import read_keys
from hub.maintenance import run_once
from hub.settings import HubSettings
from hub.sites import revoke_site
from tests.clocks import clocked
from tests.hub.client import Node
from tests.hub.conftest import FakeClock, Hub
from tests.hub.engines import hub_db


@pytest.fixture
async def quiet_hub(
    settings: HubSettings,
    clock: FakeClock,
    aiohttp_client: AiohttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> Hub:
    """A hub whose once-a-second directory watch never fires and which hears no other
    process (PostgreSQL's NOTIFY): the test drives every check."""
    monkeypatch.setattr(hub.push, "WATCH_INTERVAL", 3600.0)

    async def deaf(*_: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(hub.app, "listen", deaf)
    app = create_app(settings, deps=clocked(clock))
    http = await aiohttp_client(app)
    return Hub(settings, clock, app, http)


def _revoke_like_the_cli(h: Hub, node_id: str) -> int:
    """`mbe-hub site revoke`: its own database connection, as another process would."""
    db = hub_db(h.settings)
    try:
        return revoke_site(db, read_keys(h.settings.key_path), h.settings, node_id, h.clock.now())
    finally:
        db.close()


async def _next(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> aiohttp.WSMessage:
    return await asyncio.wait_for(ws.receive(), timeout=timeout)


async def _connected(h: Hub, node: Node) -> aiohttp.ClientWebSocketResponse:
    """A push socket past its connect-time directory frame."""
    ws = await h.client(node).ws()
    first = await _next(ws)
    assert first.type == WSMsgType.TEXT
    assert first.json()["type"] == "directory"
    return ws


def _assert_closed_for_revocation(
    msg: aiohttp.WSMessage, ws: aiohttp.ClientWebSocketResponse
) -> None:
    assert msg.type == WSMsgType.CLOSE, msg
    assert msg.data == WSCloseCode.POLICY_VIOLATION
    assert ws.closed


async def test_cli_revoke_closes_the_socket_on_the_next_directory_check(quiet_hub: Hub) -> None:
    """The check that notices a CLI revoke closes the revoked node's socket, and only that one."""
    revoked, other = await quiet_hub.node("Revoked Office"), await quiet_hub.node("Other Office")
    ws_revoked = await _connected(quiet_hub, revoked)
    ws_other = await _connected(quiet_hub, other)
    try:
        version = _revoke_like_the_cli(quiet_hub, revoked.node_id)
        assert await quiet_hub.app[ANNOUNCER].check() == version
        # The first thing the revoked node gets is the close, not the new directory frame.
        _assert_closed_for_revocation(await _next(ws_revoked), ws_revoked)
        assert (await _next(ws_revoked)).type == WSMsgType.CLOSED
        # The others are still connected and told about the new version.
        assert (await _next(ws_other)).json() == {"type": "directory", "version": version}
        assert quiet_hub.app[PUSH].connected_nodes == 1
    finally:
        await ws_revoked.close()
        await ws_other.close()


async def test_maintenance_pass_closes_a_revoked_socket(quiet_hub: Hub) -> None:
    """A maintenance pass closes a revoked node's socket even without a new directory version."""
    node = await quiet_hub.node("Swept Office")
    ws = await _connected(quiet_hub, node)
    try:
        _revoke_like_the_cli(quiet_hub, node.node_id)
        await run_once(quiet_hub.app, quiet_hub.clock.now())
        _assert_closed_for_revocation(await _next(ws), ws)
        assert quiet_hub.app[PUSH].connected_nodes == 0
    finally:
        await ws.close()


async def test_running_hub_closes_the_socket_within_seconds(hub: Hub) -> None:
    """With the hub's own watch running, a CLI revoke closes the socket within a few seconds."""
    node = await hub.node("Watched Office")
    ws = await _connected(hub, node)
    try:
        _revoke_like_the_cli(hub, node.node_id)
        _assert_closed_for_revocation(await _next(ws, timeout=3.0), ws)
    finally:
        await ws.close()


async def test_revoked_node_cannot_open_a_push_socket(quiet_hub: Hub) -> None:
    """The upgrade request of a revoked node is refused with 403 and nothing is registered."""
    node = await quiet_hub.node("Refused Office")
    _revoke_like_the_cli(quiet_hub, node.node_id)
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await quiet_hub.client(node).ws()
    assert err.value.status == 403
    assert quiet_hub.app[PUSH].connected_nodes == 0


async def test_revoke_racing_the_upgrade_closes_the_new_socket(
    quiet_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revoke landing between authentication and registration still closes the socket at once."""
    node = await quiet_hub.node("Racing Office")
    original: Callable[..., Awaitable[tuple[str, bytes]]] = hub.handlers.authenticated

    async def authenticated_then_revoked(request: web.Request, *args: Any) -> tuple[str, bytes]:
        out = await original(request, *args)
        _revoke_like_the_cli(quiet_hub, node.node_id)
        # The check that notices the revoke runs before the socket is registered.
        await quiet_hub.app[ANNOUNCER].check()
        return out

    monkeypatch.setattr(hub.handlers, "authenticated", authenticated_then_revoked)
    ws = await quiet_hub.client(node).ws()
    try:
        _assert_closed_for_revocation(await _next(ws), ws)
        assert quiet_hub.app[PUSH].connected_nodes == 0
    finally:
        await ws.close()
