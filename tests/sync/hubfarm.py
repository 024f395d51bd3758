"""One hub at several URLs on loopback, and the ways a URL can fail a node.

`serve_process` serves a FakeHub's one state through a server of its own: what
several `mbe-hub serve` processes on one database are to a node. Each records
the requests it got (`hits`) and can answer 502 like a reverse proxy whose hub
process is gone (`down = True`); `stop()` closes it (connection refused from
then on, its push sockets closed). `dead_url()` has nothing listening,
`Blackhole` accepts connections and never answers (every request times out),
and `lossy_proxy` passes a request on to a hub and, once the hub has answered,
answers 502 itself: the hub committed, the node never learns it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer
from yarl import URL

from demo.processes import free_port
from tests.sync.fakehub import FakeHub


@dataclass
class Door:
    """What one hub process saw, and whether it is down behind its proxy."""

    hits: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False


@dataclass
class HubProcess:
    url: str
    server: TestServer
    door: Door

    @property
    def hits(self) -> list[tuple[str, str]]:
        return self.door.hits

    def count(self, path: str) -> int:
        """Requests to `path` this process got."""
        return sum(1 for _method, p in self.door.hits if p == path)

    async def stop(self) -> None:
        await self.server.close()


async def serve_process(hub: FakeHub, aiohttp_server: AiohttpServer) -> HubProcess:
    """Another process of `hub`: its own port, the hub's one state."""
    door = Door()

    @web.middleware
    async def count_and_gate(request: web.Request, handler: Any) -> web.StreamResponse:
        door.hits.append((request.method, request.path))
        if door.down:
            return web.Response(status=502, text="bad gateway")
        response: web.StreamResponse = await handler(request)
        return response

    app = hub.app()
    app.middlewares.insert(0, count_and_gate)
    server = await aiohttp_server(app, host="127.0.0.1")
    return HubProcess(str(server.make_url("/")).rstrip("/"), server, door)


def dead_url() -> str:
    """A loopback URL with nothing listening: connection refused."""
    return f"http://127.0.0.1:{free_port()}"


class Blackhole:
    """A port that accepts connections (the kernel does) and never answers."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def close(self) -> None:
        self._sock.close()


@dataclass
class LossyProxy:
    url: str
    # (method, path, the hub's status) of every request passed on.
    forwarded: list[tuple[str, str, int]]


async def lossy_proxy(target: str, aiohttp_server: AiohttpServer) -> LossyProxy:
    """Passes each request on to `target`, then answers 502: the answer is lost."""
    forwarded: list[tuple[str, str, int]] = []
    passed = {"content-type", "if-none-match"}

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/v1/ws":
            return web.Response(status=502, text="bad gateway")
        body = await request.read()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in passed or k.lower().startswith("x-mbe-")
        }
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                URL(target + request.raw_path, encoded=True),
                data=body or None,
                headers=headers,
            ) as answer,
        ):
            await answer.read()
            forwarded.append((request.method, request.path, answer.status))
        return web.Response(status=502, text="bad gateway")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    return LossyProxy(str(server.make_url("/")).rstrip("/"), forwarded)
