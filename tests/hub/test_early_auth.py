"""Requests that cannot be authentic are refused before their body is read or decoded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from hub.keyfile import read_keys
from hub.sites import revoke_site
from protocol.keys import PrivateKeys
from protocol.requests import sign_request
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db

BIG = (1 << 20) - 1  # just under the test hub's relay.max_body


async def _status_before_body(hub: Hub, headers: dict[str, str], length: int = BIG) -> int:
    """Send the headers and a few bytes of a `length`-byte body; the status line must come back."""
    assert hub.http.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.http.port)
    try:
        head = "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "Content-Type: application/msgpack\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {length}\r\n\r\n"
        writer.write(head.encode() + b"\x81" * 100)
        await writer.drain()
        # The rest of the body is never sent: only an early answer arrives in time.
        line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
    return int(line.split()[1])


def _headers(hub: Hub, node_id: str, keys: PrivateKeys, *, skew: int = 0) -> dict[str, str]:
    return sign_request(
        "POST",
        "/v1/messages",
        b"",
        node_id=node_id,
        keys=keys,
        timestamp=hub.clock.now() + skew,
        nonce="ab" * 16,
    )


async def test_unknown_node_is_refused_before_the_body(hub: Hub) -> None:
    """An unknown node id gets 401 while its 1 MiB body is still unsent."""
    started = time.monotonic()
    status = await _status_before_body(hub, _headers(hub, "nobody-here", PrivateKeys.generate()))
    assert status == 401
    assert time.monotonic() - started < 5


async def test_missing_headers_skew_and_revocation_are_refused_before_the_body(hub: Hub) -> None:
    """No signature headers, a stale timestamp, or a revoked node: refused without the body."""
    node = await hub.node("Early Office")
    assert await _status_before_body(hub, {}) == 401
    skewed = _headers(hub, node.node_id, node.keys, skew=-3600)
    assert await _status_before_body(hub, skewed) == 401
    db = hub_db(hub.settings)
    try:
        revoke_site(
            db, read_keys(hub.settings.key_path), hub.settings, node.node_id, hub.clock.now()
        )
    finally:
        db.close()
    assert await _status_before_body(hub, _headers(hub, node.node_id, node.keys)) == 403


async def test_declared_oversize_body_is_refused_unread(hub: Hub) -> None:
    """A Content-Length above relay.max_body gets 413 before the body arrives."""
    node = await hub.node("Oversize Office")
    headers = _headers(hub, node.node_id, node.keys)
    assert await _status_before_body(hub, headers, length=(1 << 20) + 1) == 413


async def test_signature_is_checked_before_the_body_is_decoded(hub: Hub) -> None:
    """A body that is not msgpack but fails the signature is bad-signature, not malformed."""
    node = await hub.node("Forged Office")
    headers = _headers(hub, node.node_id, node.keys)  # signed over an empty body
    resp = await hub.http.post("/v1/messages", data=b"\xc1 not msgpack", headers=headers)
    assert resp.status == 401
    assert (await resp.json())["type"].endswith("/bad-signature")


async def test_chunked_body_over_the_limit_is_cut_off(hub: Hub) -> None:
    """Without a Content-Length, reading stops with 413 once the limit is passed."""
    node = await hub.node("Chunked Office")
    headers = _headers(hub, node.node_id, node.keys)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"\x00" * (64 << 10)

    resp = await hub.http.post("/v1/messages", data=chunks(), headers=headers)
    assert resp.status == 413
