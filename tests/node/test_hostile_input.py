"""Hostile requests to the local API end in a 4xx problem, never a 500."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.node.conftest import CASE, ApiNode

Client = TestClient[web.Request, web.Application]


async def _raw(client: Client, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes (headers a well-behaved client refuses to send); return status, body."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("token", [b"\xe4", b"mbe_\xff\xfe", "mbe_ä".encode()])
async def test_a_non_ascii_token_is_401(client: Client, token: bytes) -> None:
    """Bytes outside ASCII in the Authorization header are an invalid token: 401."""
    status, body = await _raw(
        client,
        b"GET /api/v1/cases HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + token + b"\r\n\r\n",
    )
    assert status == 401
    assert json.loads(body)["type"].endswith(":unauthorized")


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
async def test_deeply_nested_json_is_400(client: Client, api_node: ApiNode, depth: int) -> None:
    """A JSON body nested very deep is refused as a bad request, not a RecursionError."""
    body = b"[" * depth + b"]" * depth
    resp = await client.post(
        "/api/v1/cases",
        data=body,
        headers=api_node.auth | {"Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert "nested" in (await resp.json(content_type=None))["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"case_type":"case_management","pseudonym":"\\ud800"}',
        b'{"case_type":"case_management","pseudonym":"x","\\udfff":1}',
        b'{"case_type":"case_management","pseudonym":"x","topics":["\\udc80"]}',
    ],
    ids=["value", "key", "list-item"],
)
async def test_a_lone_surrogate_is_400(client: Client, api_node: ApiNode, raw: bytes) -> None:
    """A string with a lone surrogate cannot be stored as UTF-8: 400 and nothing stored."""
    resp = await client.post(
        "/api/v1/cases", data=raw, headers=api_node.auth | {"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert "not valid text" in (await resp.json(content_type=None))["detail"]
    listed = await client.get("/api/v1/cases", headers=api_node.auth)
    assert (await listed.json())["cases"] == []


async def test_ordinary_unicode_still_works(client: Client, api_node: ApiNode) -> None:
    """The checks leave real non-ASCII text alone (umlauts, Arabic, an emoji)."""
    case = dict(CASE) | {"given_name": "Ämina أمينة 🙂"}
    resp = await client.post("/api/v1/cases", json=case, headers=api_node.auth)
    assert resp.status == 201
    assert (await resp.json())["given_name"] == "Ämina أمينة 🙂"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'{"case_type":"case_management","pseudonym":"a","pseudonym":"b"}', "'pseudonym'"),
        (b'{"case_type":"case_management","pseudonym":"x","topics":[{"k":1,"k":2}]}', "'k'"),
        (rb'{"case_type":"case_management","pseudonym":"x","\u00e4":1,"\u00e4":2}', "key twice"),
    ],
    ids=["top-level", "nested", "not-a-field-name"],
)
async def test_a_repeated_key_is_400(
    client: Client, api_node: ApiNode, raw: bytes, named: str
) -> None:
    """An object naming one key twice is refused (no silent last-value-wins); nothing stored."""
    resp = await client.post(
        "/api/v1/cases", data=raw, headers=api_node.auth | {"Content-Type": "application/json"}
    )
    assert resp.status == 400
    detail = (await resp.json(content_type=None))["detail"]
    assert "twice" in detail
    assert named in detail
    assert "ä" not in detail
    listed = await client.get("/api/v1/cases", headers=api_node.auth)
    assert (await listed.json())["cases"] == []
