"""WebSocket registry: which nodes are connected, and what they are told.

Two kinds of frame, both only hints that make the node look now instead of at
its next poll: `{"type": "mail"}` ("your inbox has something", the node then
fetches over the signed inbox endpoint) and `{"type": "directory", "version":
N}` ("directory version N is published", the node then refreshes with its
ETag). A node may hold several connections (e.g. during a restart), so each
node maps to a set.

Directory versions are published by the server (enrollment, re-signing) and by
the `mbe-hub site add|revoke` commands in another process, which cannot reach
the server's sockets. So `DirectoryAnnouncer` compares the newest version in
the database with the last one announced: right after the server publishes,
and every `WATCH_INTERVAL` seconds for the commands' changes. Alternatives
rejected: a signal or socket from the CLI to the server (fails silently when
the server is down, and needs its own authentication), SQLite's
`data_version` (changes on every write, i.e. on every upload).

A revoked node loses its sockets at once (`close_revoked`, close code 1008):
before each announcement of a new version (a revoke always publishes one, so
a `site revoke` from the CLI takes effect within `WATCH_INTERVAL`), on every
maintenance pass, and right after a node's socket is registered (a revoke can
land between the upgrade's authentication and the registration). A revoked
node never hears of the version that revokes it; its reconnects are refused
with 403 `revoked-node` like every other signed request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog
from aiohttp import WSCloseCode, web

from hub.directory import latest_version
from hub.errors import HubError
from hub.sites import revoked_among
from hub.storage.db import DbWorker
from hub.storage.engine import ENGINE_ERRORS
from protocol.hub_api import DirectoryFrame, MailFrame, push_frame

MAIL_FRAME = push_frame(MailFrame())
# A primary-key lookup per second: cheap, and an operator's `site add` reaches
# every connected office within about a second.
WATCH_INTERVAL = 1.0
REVOKED_CODE = WSCloseCode.POLICY_VIOLATION
REVOKED_MESSAGE = b"this node has been revoked by the hub operator"
# A client that does not read must not hold up the announcement to the others.
CLOSE_TIMEOUT = 5.0
log = structlog.get_logger()
# What one pass of the directory watch may fail with and the next pass retries.
PASS_ERRORS: tuple[type[Exception], ...] = (HubError, *ENGINE_ERRORS)


def directory_frame(version: int) -> str:
    return push_frame(DirectoryFrame(version=version))


class PushRegistry:
    def __init__(self) -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}

    def add(self, node_id: str, ws: web.WebSocketResponse) -> None:
        self._sockets.setdefault(node_id, set()).add(ws)

    def remove(self, node_id: str, ws: web.WebSocketResponse) -> None:
        conns = self._sockets.get(node_id)
        if conns is not None:
            conns.discard(ws)
            if not conns:
                del self._sockets[node_id]

    @property
    def connected_nodes(self) -> int:
        return len(self._sockets)

    @property
    def node_ids(self) -> list[str]:
        return list(self._sockets)

    async def disconnect_revoked(self, node_ids: Iterable[str]) -> None:
        """Unregister every socket of `node_ids` at once, then close them (code 1008)."""
        sockets = [ws for node_id in node_ids for ws in self._sockets.pop(node_id, ())]
        await asyncio.gather(*(_close(ws, REVOKED_CODE, REVOKED_MESSAGE) for ws in sockets))

    async def notify(self, node_ids: Iterable[str]) -> None:
        for node_id in node_ids:
            await self._send(node_id, MAIL_FRAME)

    async def broadcast(self, frame: str) -> int:
        """Send `frame` to every connected node; return how many nodes were connected."""
        nodes = list(self._sockets)
        for node_id in nodes:
            await self._send(node_id, frame)
        return len(nodes)

    async def _send(self, node_id: str, frame: str) -> None:
        for ws in list(self._sockets.get(node_id, ())):
            if ws.closed:
                continue
            try:
                await ws.send_str(frame)
            except ConnectionError:
                # The reader loop of that socket notices and unregisters it.
                log.info("push.send_failed", node=node_id)

    async def close_all(self) -> None:
        for conns in list(self._sockets.values()):
            for ws in list(conns):
                await ws.close(code=1001, message=b"hub shutting down")
        self._sockets.clear()


async def _close(ws: web.WebSocketResponse, code: int, message: bytes) -> None:
    # On timeout wait_for cancels the close, which then drops the connection.
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(ws.close(code=code, message=message), CLOSE_TIMEOUT)


async def close_revoked(push: PushRegistry, db: DbWorker) -> set[str]:
    """Close the sockets of every connected node whose site is revoked; return those nodes."""
    connected = push.node_ids
    if not connected:
        return set()
    revoked = await db.run(revoked_among, connected)
    if revoked:
        await push.disconnect_revoked(revoked)
        log.info("push.revoked_closed", nodes=sorted(revoked))
    return revoked


class DirectoryAnnouncer:
    """Tells every connected node once about each newer directory version."""

    def __init__(self, push: PushRegistry, db: DbWorker) -> None:
        self._push = push
        self._db = db
        self._announced = 0

    async def start(self) -> None:
        """Remember the current version: nodes learn it when they connect."""
        self._announced = await self._db.run(latest_version)

    async def check(self) -> int | None:
        """Announce the newest version if it is newer than the last announced one."""
        version = await self._db.run(latest_version)
        if version <= self._announced:
            return None
        # First: a node revoked by this version must not be told of it.
        await close_revoked(self._push, self._db)
        if version <= self._announced:
            return None  # a concurrent check announced it (or a newer one) meanwhile
        self._announced = version
        nodes = await self._push.broadcast(directory_frame(version))
        log.info("directory.announced", version=version, nodes=nodes)
        return version

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                await self.check()
            except PASS_ERRORS as exc:
                # A busy or locked database must not end the watch; the next pass retries.
                log.warning("directory.watch_failed", error=type(exc).__name__)
