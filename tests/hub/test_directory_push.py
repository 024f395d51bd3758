"""Directory frames on the push WebSocket: on connect and on every new version."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from hub.directory import latest_version
from hub.keyfile import read_keys
from hub.maintenance import run_once
from hub.sites import revoke_site
from tests.hub.client import referral
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db


async def _frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    msg: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), timeout=timeout)
    return msg


def _version(hub: Hub) -> int:
    db = hub_db(hub.settings)
    try:
        return latest_version(db)
    finally:
        db.close()


async def test_connect_announces_the_current_version(hub: Hub) -> None:
    """On connect a node is told the newest directory version, after any mail frame."""
    a, b = await hub.node("Announce A"), await hub.node("Announce B")
    await hub.client(a).upload(
        [referral(a, b.node_id, b.keys.public, now=hub.clock.now()).encode()]
    )
    ws = await hub.client(b).ws()
    try:
        assert await _frame(ws) == {"type": "mail"}
        assert await _frame(ws) == {"type": "directory", "version": _version(hub)}
    finally:
        await ws.close()


async def test_enrollment_is_announced_at_once(hub: Hub) -> None:
    """When another office enrolls, every connected node gets the new version."""
    a = await hub.node("Early Office")
    ws = await hub.client(a).ws()
    try:
        first = await _frame(ws)
        await hub.node("Late Office")
        # `site add` (another connection, as the CLI) publishes one version, the
        # enrollment the next; the frames may merge but must reach the newest.
        newest = _version(hub)
        assert newest > first["version"]
        seen = first["version"]
        while seen < newest:
            frame = await _frame(ws)
            assert frame["type"] == "directory"
            assert frame["version"] > seen
            seen = frame["version"]
        assert seen == newest
    finally:
        await ws.close()


async def test_revocation_from_another_process_is_announced(hub: Hub) -> None:
    """A revoke written by the CLI's own connection reaches connected nodes within seconds."""
    a, b = await hub.node("Watch A"), await hub.node("Watch B")
    ws = await hub.client(a).ws()
    try:
        await _frame(ws)
        db = hub_db(hub.settings)
        try:
            version = revoke_site(
                db, read_keys(hub.settings.key_path), hub.settings, b.node_id, hub.clock.now()
            )
        finally:
            db.close()
        assert await _frame(ws, timeout=5.0) == {"type": "directory", "version": version}
    finally:
        await ws.close()


async def test_resigning_is_announced(hub: Hub) -> None:
    """A maintenance pass that re-signs the directory announces the new version."""
    a = await hub.node("Resign Office")
    ws = await hub.client(a).ws()
    try:
        before = (await _frame(ws))["version"]
        hub.clock.advance(hub.settings.directory.ttl)
        await run_once(hub.app, hub.clock.now())
        frame = await _frame(ws)
        assert frame == {"type": "directory", "version": _version(hub)}
        assert frame["version"] > before
    finally:
        await ws.close()


async def test_nothing_new_announces_nothing(hub: Hub) -> None:
    """Without a new version no directory frame follows the one sent on connect."""
    a = await hub.node("Quiet Office")
    ws = await hub.client(a).ws()
    try:
        await _frame(ws)
        try:
            frame: dict[str, Any] | None = await _frame(ws, timeout=2.5)
        except TimeoutError:
            frame = None
        assert frame is None
    finally:
        await ws.close()
