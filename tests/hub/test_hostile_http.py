"""Hostile bytes on the wire get a 4xx answer (or a redirect), never a 500."""

from __future__ import annotations

import asyncio
import os

import pytest
from pytest_aiohttp import AiohttpClient

from hub.app import create_app
from hub.settings import HubSettings
from hub.stats.routes import add_stats
from hub.tokens import create_token
from tests.clocks import clocked
from tests.hub.client import problem_kind
from tests.hub.conftest import FakeClock, Hub
from tests.hub.engines import hub_db

SIGNED = (
    b"X-MBE-Node: office-a\r\nX-MBE-Timestamp: 1800000000\r\n"
    b"X-MBE-Nonce: " + b"0" * 32 + b"\r\nX-MBE-Signature: " + b"0" * 128 + b"\r\n"
)
FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"
PERIODS = b"GET /coordinator/v1/periods HTTP/1.1\r\n"

# (what, request line + headers, body); the Host and Content-Length headers are added.
HOSTILE: list[tuple[str, bytes, bytes]] = [
    ("bearer latin-1", PERIODS + b"Authorization: Bearer \xe4\r\n", b""),
    ("bearer utf-8", PERIODS + b"Authorization: Bearer \xc3\xa4\r\n", b""),
    ("bearer on dashboard", b"GET /dashboard HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n", b""),
    ("cookie latin-1", b"GET /dashboard HTTP/1.1\r\nCookie: mbe_session=\xe4\r\n", b""),
    ("cookie on api", PERIODS + b"Cookie: mbe_session=\xe4\xe4\r\n", b""),
    ("cookie at logout", b"POST /dashboard/logout HTTP/1.1\r\nCookie: mbe_session=\xe4\r\n", b""),
    ("multipart without name", b"POST /dashboard/login HTTP/1.1\r\n"
     b"Content-Type: multipart/form-data; boundary=x\r\n", b"--x\r\n\r\nvalue\r\n--x--\r\n"),
    ("multipart cut off", b"POST /dashboard/login HTTP/1.1\r\n"
     b"Content-Type: multipart/form-data; boundary=x\r\n", b"--x\r\n"),
    ("multipart no boundary", b"POST /dashboard/login HTTP/1.1\r\n"
     b"Content-Type: multipart/form-data\r\n", b"token=abc"),
    ("form bad utf-8", b"POST /dashboard/login HTTP/1.1\r\n" + FORM, b"token=%ff%fe"),
    ("form raw latin-1", b"POST /dashboard/login HTTP/1.1\r\n" + FORM, b"token=\xe4\xe4"),
    ("form non-ascii token", b"POST /dashboard/login HTTP/1.1\r\n" + FORM, b"token=%C3%A4"),
    ("signed, latin-1 path", b"GET /v1/inbox?after=\xe4 HTTP/1.1\r\n" + SIGNED, b""),
    ("signed, superscript digit", b"GET /v1/inbox?after=%C2%B2 HTTP/1.1\r\n" + SIGNED, b""),
    ("node header latin-1", b"GET /v1/directory HTTP/1.1\r\nX-MBE-Node: \xe4\r\n", b""),
    ("dashboard period", b"GET /dashboard?period=%ff HTTP/1.1\r\n", b""),
]  # fmt: skip


async def _raw(port: int, head: bytes, body: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = head + b"Host: 127.0.0.1\r\nConnection: close\r\n"
        request += b"Content-Length: %d\r\n\r\n" % len(body) + body
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    status_line = answer.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), answer


@pytest.mark.parametrize(("what", "head", "body"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_request_gets_a_client_error(
    settings: HubSettings,
    clock: FakeClock,
    aiohttp_client: AiohttpClient,
    what: str,
    head: bytes,
    body: bytes,
) -> None:
    """The hub answers 3xx or 4xx, never 500, and logs no internal error."""
    app = create_app(settings, deps=clocked(clock), extensions=[add_stats])
    http = await aiohttp_client(app)
    db = hub_db(settings)
    try:
        create_token(db, "coordinator", None, clock.now(), os.urandom(32))
    finally:
        db.close()
    assert http.port is not None
    status, answer = await _raw(http.port, head, body)
    assert 300 <= status < 500, (what, answer[:300])


async def test_enrolled_node_with_hostile_path_or_query_gets_a_client_error(hub: Hub) -> None:
    """For a real node: raw latin-1 in the path is 400, a superscript digit in a query 400."""
    node = await hub.node("Hostile Path Office")
    headers = hub.client(node).headers("GET", "/v1/inbox")
    head = b"GET /v1/inbox?after=\xe4 HTTP/1.1\r\n" + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in headers.items()
    )
    assert hub.http.port is not None
    status, _ = await _raw(hub.http.port, head, b"")
    assert status == 400
    resp = await hub.client(node).signed("GET", "/v1/inbox?after=%C2%B2")
    assert resp.status == 400
    assert problem_kind(await resp.json()) == "malformed"
