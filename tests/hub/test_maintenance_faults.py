"""The maintenance task survives faults: per message, per step and per pass."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from structlog.testing import capture_logs

from hub import maintenance, relay
from hub.app import create_app
from hub.settings import HubSettings
from protocol.envelope import Envelope, seal
from protocol.errors import MalformedError
from protocol.ids import HUB_ID
from protocol.keys import PrivateKeys, PublicKeys
from tests.clocks import clocked
from tests.hub.client import referral
from tests.hub.conftest import FakeClock, Hub
from tests.hub.engines import hub_db


def _queued(hub: Hub) -> int:
    with hub_db(hub.settings) as conn:
        return int(
            conn.execute("SELECT count(*) FROM queue WHERE sender != ?", (HUB_ID,)).fetchone()[0]
        )


def _directory_version(hub: Hub) -> int:
    with hub_db(hub.settings) as conn:
        return int(conn.execute("SELECT max(version) FROM directory_versions").fetchone()[0])


async def test_a_notice_that_cannot_be_sealed_does_not_stop_the_others(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealing one sender's notice fails: every expired message still goes, the others are told."""
    a, c, b = await hub.node("Office A"), await hub.node("Office C"), await hub.node("Office B")
    now = hub.clock.now()
    for sender in (a, c):
        env = referral(sender, b.node_id, b.keys.public, now=now, ttl=3600)
        await hub.client(sender).upload([env.encode()])

    def faulty_seal(inner: Any, keys: PrivateKeys, to: PublicKeys, **kw: Any) -> Envelope:
        if to == c.keys.public:
            raise MalformedError("injected fault")
        return seal(inner, keys, to, **kw)

    monkeypatch.setattr(relay, "seal", faulty_seal)
    hub.clock.advance(3600)
    with capture_logs() as logs:
        notified = await maintenance.run_once(hub.app, hub.clock.now())
    assert notified == {a.node_id}
    assert _queued(hub) == 0
    assert len((await hub.client(a).fetch())["messages"]) == 1
    assert (await hub.client(c).fetch())["messages"] == []
    skipped = [e for e in logs if e["event"] == "relay.notice_skipped"]
    assert skipped == [
        {
            "event": "relay.notice_skipped",
            "sender": c.node_id,
            "error": "MalformedError",
            "log_level": "warning",
        }
    ]


async def test_a_failing_step_still_lets_the_directory_be_resigned(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error while expiring is logged; the same pass still re-signs."""

    def broken_expire(*args: Any, **kwargs: Any) -> set[str]:
        raise RuntimeError("injected fault with data that must not be logged")

    monkeypatch.setattr(relay, "expire", broken_expire)
    before = _directory_version(hub)
    hub.clock.advance(hub.settings.directory.ttl - hub.settings.directory.resign_before + 1)
    with capture_logs() as logs:
        assert await maintenance.run_once(hub.app, hub.clock.now()) == set()
    assert _directory_version(hub) > before
    failed = [e for e in logs if e["event"] == "maintenance.failed"]
    assert failed == [
        {
            "event": "maintenance.failed",
            "step": "expire",
            "error": "RuntimeError",
            "log_level": "error",
        }
    ]
    assert "must not be logged" not in repr(logs)


async def test_the_background_task_keeps_running_after_a_failed_pass(
    settings: HubSettings,
    clock: FakeClock,
    aiohttp_client: AiohttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass that raises is logged as maintenance.failed and the loop runs the next pass."""
    fast = replace(settings, relay=replace(settings.relay, expiry_interval=0.01))
    calls: list[int] = []

    async def failing_pass(app: Any, now: int, *, shared: bool = True) -> set[str]:
        calls.append(now)
        raise RuntimeError("injected fault")

    monkeypatch.setattr(maintenance, "run_once", failing_pass)
    with capture_logs() as logs:
        await aiohttp_client(create_app(fast, deps=clocked(clock)))
        for _ in range(300):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
    assert len(calls) >= 3
    assert {
        "event": "maintenance.failed",
        "step": "pass",
        "error": "RuntimeError",
        "log_level": "error",
    } in logs
