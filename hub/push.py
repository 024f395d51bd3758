"""WebSocket registry: which nodes are connected, and telling them they have mail.

The frame only says "you have mail"; the node then fetches over the signed
inbox endpoint. A node may hold several connections (e.g. during a restart),
so each node maps to a set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import structlog
from aiohttp import web

MAIL_FRAME = json.dumps({"type": "mail"})
log = structlog.get_logger()


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

    async def notify(self, node_ids: Iterable[str]) -> None:
        for node_id in node_ids:
            for ws in list(self._sockets.get(node_id, ())):
                if ws.closed:
                    continue
                try:
                    await ws.send_str(MAIL_FRAME)
                except ConnectionError:
                    # The reader loop of that socket notices and unregisters it.
                    log.info("push.send_failed", node=node_id)

    async def close_all(self) -> None:
        for conns in list(self._sockets.values()):
            for ws in list(conns):
                await ws.close(code=1001, message=b"hub shutting down")
        self._sockets.clear()
