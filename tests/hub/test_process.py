"""The hub as a real process: durability across SIGKILL, and no plaintext anywhere."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from protocol.envelope import Envelope, open_envelope
from protocol.payloads import ReferralOffer
from tests.hub.client import HubClient, enroll, referral
from tests.hub.proc import HubProcess, run_cli, site_code


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "hubdata"
    out = run_cli("init", "--dir", str(d), "--region", "Teststadt")
    assert out.returncode == 0, out.stderr
    config = d / "hub.toml"
    config.write_text(config.read_text().replace('log_level = "info"', 'log_level = "debug"'))
    return d


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_message_acknowledged_before_sigkill_is_delivered_after_restart(
    data_dir: Path,
) -> None:
    """An upload the hub acknowledged survives SIGKILL right after the answer."""
    (_, code_a), (_, code_b) = site_code(data_dir, "Kill A"), site_code(data_dir, "Kill B")
    hub = HubProcess(data_dir)
    await hub.start()
    try:
        async with aiohttp.ClientSession(base_url=hub.url) as http:
            a, b = await enroll(http, code_a), await enroll(http, code_b)
            env = referral(a, b.node_id, b.keys.public, now=int(time.time()))
            ans = await HubClient(http, a).upload([env.encode()])
            assert ans["accepted"] == [env.msg_id]
    finally:
        await hub.kill()
    hub = HubProcess(data_dir)
    await hub.start()
    try:
        async with aiohttp.ClientSession(base_url=hub.url) as http:
            page = await HubClient(http, b).fetch()
    finally:
        await hub.stop()
    assert [m["envelope"] for m in page["messages"]] == [env.encode()]


async def test_no_plaintext_marker_reaches_hub_files_or_logs(data_dir: Path) -> None:
    """Markers inside sealed referrals appear in no file of the data dir and no log line."""
    markers = [f"PLAINTEXT-MARKER-{os.urandom(6).hex()}" for _ in range(3)]
    control = f"Kontrolle-{os.urandom(4).hex()}"
    (_, code_a), (_, code_b) = site_code(data_dir, control), site_code(data_dir, "Marker B")
    hub = HubProcess(data_dir)
    await hub.start()
    try:
        async with aiohttp.ClientSession(base_url=hub.url) as http:
            a, b = await enroll(http, code_a), await enroll(http, code_b)
            now = int(time.time())
            envs = [
                referral(a, b.node_id, b.keys.public, now=now, family_name=m, note=f"{m} Notiz")
                for m in markers
            ]
            await HubClient(http, a).upload([e.encode() for e in envs])
            page = await HubClient(http, b).fetch()
            opened = [
                open_envelope(
                    Envelope.decode(m["envelope"]), b.keys, b.node_id, a.keys.public, now=now
                )
                for m in page["messages"][:1]
            ]
            await HubClient(http, b).ack([e.msg_id for e in envs[1:]])
    finally:
        assert await hub.stop() == 0
    # The markers really travelled: the recipient reads them after decryption.
    payload = opened[0].payload
    assert isinstance(payload, ReferralOffer)
    assert payload.client["family_name"] == markers[0]
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    blobs = b"".join(p.read_bytes() for p in files)
    logs = "".join(hub.log_lines)
    # The scan can see text the hub does store (a site name), so its silence below means something.
    assert control.encode() in blobs
    assert '"relay.stored"' in logs
    for m in markers:
        assert m.encode() not in blobs
        assert m.encode("utf-16-le") not in blobs
        assert m not in logs
