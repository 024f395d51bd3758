"""A client that cuts the connection mid-body is no internal error (no traceback).

Served as `mbe-hub serve` serves (an AppRunner, handlers not cancelled when the
client goes), not by the test server, which cancels the handler instead.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from structlog.testing import capture_logs

from demo.processes import free_port
from hub.app import create_app
from hub.settings import HubSettings
from tests.clocks import FakeClock, clocked


async def _cut_mid_body(port: int, path: str) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        '{"code": "ab'.encode()
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_a_request_body_cut_short_logs_no_internal_error(
    settings: HubSettings, clock: FakeClock
) -> None:
    runner = web.AppRunner(create_app(settings, deps=clocked(clock)), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        with capture_logs() as logs:
            await _cut_mid_body(port, "/v1/enroll")
            for _ in range(100):
                if any(e["event"] == "http.client_gone" for e in logs):
                    break
                await asyncio.sleep(0.02)
        events = [e["event"] for e in logs]
        assert "http.client_gone" in events
        assert "http.internal_error" not in events
        assert not any("exc_info" in e for e in logs)
    finally:
        await runner.cleanup()
