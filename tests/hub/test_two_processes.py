"""Two hub instances on one PostgreSQL database serve one region (issue 14).

Each app here has its own pool, listener, push sockets and background loops,
as two `mbe-hub serve` processes have; the end-to-end test with real
processes and SIGKILLs is tests/e2e/test_hub_cluster.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from hub.app import create_app, probe
from hub.context import DB
from hub.keyfile import read_keys
from hub.settings import HubSettings
from hub.sites import revoke_site
from hub.storage import jobs
from protocol.encoding import pack
from tests.clocks import FakeClock, clocked
from tests.hub.client import HubClient, enroll, referral
from tests.hub.conftest import START, Hub, init_data_dir
from tests.hub.engines import hub_db
from tests.pg import Cluster


@dataclass
class Pair:
    one: Hub
    two: Hub


QUOTA = 64 << 10


@pytest.fixture
async def pair(tmp_path: Path, pg_url: str, aiohttp_client: AiohttpClient) -> Pair:
    """Two hub apps sharing the keys and the PostgreSQL database of one data directory
    (with a small per-node queue quota, QUOTA)."""
    settings = init_data_dir(tmp_path / "hub", f'\n[database]\nurl = "{pg_url}"\n')
    relay = replace(settings.relay, max_body=QUOTA, max_queue_bytes_per_node=QUOTA)
    settings = replace(settings, relay=relay)
    clock = FakeClock(START)
    hubs = []
    for _ in range(2):
        app = create_app(settings, deps=clocked(clock))
        http: TestClient[Any, Any] = await aiohttp_client(app)
        hubs.append(Hub(settings, clock, app, http))
    return Pair(*hubs)


async def _frames(ws: aiohttp.ClientWebSocketResponse, want: dict[str, Any]) -> None:
    """Read frames until `want` arrives (5 s at most)."""
    async with asyncio.timeout(5):
        while (await ws.receive_json()) != want:
            pass


async def test_mail_uploaded_to_one_is_pushed_by_the_other(pair: Pair) -> None:
    """A node connected to instance two hears of mail uploaded to instance one, and
    fetches it from either."""
    a = await pair.one.node("Eins")
    b = await enroll(pair.two.http, pair.two.add_site("Zwei").code)
    ws = await pair.two.client(b).ws()
    try:
        await _frames(ws, {"type": "directory", "version": _newest(pair.one.settings)})
        env = referral(a, b.node_id, b.keys.public, now=pair.one.clock.now())
        await pair.one.client(a).upload([env.encode()])
        await _frames(ws, {"type": "mail"})
    finally:
        await ws.close()
    fetched = await pair.two.client(b).fetch()
    assert [m["id"] for m in fetched["messages"]] == [env.msg_id]
    assert await pair.one.client(b).ack([env.msg_id]) == 1
    assert (await pair.two.client(b).fetch())["messages"] == []


async def test_a_revocation_in_one_closes_the_socket_held_by_the_other(pair: Pair) -> None:
    a = await pair.one.node("Bleibt")
    b = await enroll(pair.two.http, pair.two.add_site("Geht").code)
    ws = await pair.two.client(b).ws()
    try:
        with hub_db(pair.one.settings) as db:
            revoke_site(
                db,
                read_keys(pair.one.settings.key_path),
                pair.one.settings,
                b.node_id,
                pair.one.clock.now(),
            )
        async with asyncio.timeout(5):
            while not ws.closed:
                msg = await ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
        assert ws.close_code == 1008
    finally:
        await ws.close()
    assert a.node_id  # the other office stays enrolled
    status = (await HubClient(pair.one.http, a, pair.one.clock).signed("GET", "/v1/inbox")).status
    assert status == 200


async def test_a_quota_holds_when_one_sender_uploads_to_both_instances_at_once(
    pair: Pair,
) -> None:
    """Two uploads that each fit the sender's quota but not together, sent at the same
    time to the two instances: one is stored, the other refused whole (429)."""
    a = await pair.one.node("Viel")
    b = await enroll(pair.two.http, pair.two.add_site("Empfang").code)
    now = pair.one.clock.now()
    batches = [
        [referral(a, b.node_id, b.keys.public, now=now, note="x" * 3000).encode() for _ in range(9)]
        for _ in range(2)
    ]
    assert QUOTA // 2 < sum(map(len, batches[0])) < QUOTA
    bodies = [pack({"envelopes": batch}) for batch in batches]
    answers = await asyncio.gather(
        *(
            HubClient(h.http, a, h.clock).signed("POST", "/v1/messages", body)
            for h, body in zip((pair.one, pair.two), bodies, strict=True)
        )
    )
    assert sorted(r.status for r in answers) == [200, 429]
    with hub_db(pair.one.settings) as db:
        count, size = db.execute(
            "SELECT count(*), sum(length(envelope)) FROM queue WHERE sender = ?", (a.node_id,)
        ).fetchone()
        (usage,) = db.execute(
            "SELECT bytes FROM queue_usage WHERE sender = ?", (a.node_id,)
        ).fetchone()
    assert count == 9
    assert usage == size <= QUOTA


async def test_one_nonce_is_accepted_by_one_instance_only(pair: Pair) -> None:
    """The same signed request replayed to the other instance is refused there."""
    a = await pair.one.node("Nonce")
    client = HubClient(pair.one.http, a, pair.one.clock)
    headers = client.headers("GET", "/v1/inbox", b"")
    first = await pair.one.http.get("/v1/inbox", headers=headers)
    again = await pair.two.http.get("/v1/inbox", headers=headers)
    assert first.status == 200
    assert (await again.json())["type"].endswith("/replayed-nonce")


def _newest(settings: HubSettings) -> int:
    with hub_db(settings) as db:
        return int(db.execute("SELECT max(version) FROM directory_versions").fetchone()[0])


async def test_a_periodic_job_runs_once_per_interval_among_instances(pair: Pair) -> None:
    """Claims of one job by several instances within one interval: exactly one wins."""
    now = pair.one.clock.now()
    wins = await asyncio.gather(
        *(h.app[DB].run(jobs.claim, "maintenance", 60.0, now) for h in (pair.one, pair.two))
    )
    assert sorted(wins) == [False, True]
    later = await pair.two.app[DB].run(jobs.claim, "maintenance", 60.0, now + 30)
    assert later is False
    assert await pair.two.app[DB].run(jobs.claim, "maintenance", 60.0, now + 60) is True


async def test_health_and_metrics_show_the_database_and_its_pool(pair: Pair) -> None:
    resp = await pair.one.http.get("/health")
    body = await resp.json()
    assert resp.status == 200
    assert body["database"]["engine"] == "postgresql"
    assert body["database"]["reachable"] is True
    text = await (await pair.one.http.get("/metrics")).text()
    assert "mbe_hub_db_reachable 1\n" in text
    assert "# TYPE mbe_hub_db_pool_size gauge\n" in text
    assert "# TYPE mbe_hub_db_pool_connections_lost_total counter\n" in text
    assert "mbe_hub_db_pool_connections_lost_total 0\n" in text


async def test_a_database_out_of_reach_is_503_and_comes_back(
    tmp_path: Path, pg_cluster: Cluster, aiohttp_client: AiohttpClient
) -> None:
    """While the hub's database refuses connections, requests get 503
    storage-unavailable with Retry-After and /health says unreachable; afterwards
    both recover without a restart."""
    url = pg_cluster.create_database()
    settings = init_data_dir(tmp_path / "hub", f'\n[database]\nurl = "{url}"\n')
    clock = FakeClock(START)
    app = create_app(settings, deps=clocked(clock))
    http = await aiohttp_client(app)
    hub = Hub(settings, clock, app, http)
    a = await hub.node("Ausfall")
    name = url.rsplit("/", 1)[1]
    # Refuse new connections to this database and end the ones the pool holds.
    pg_cluster.psql(pg_cluster.url(), f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    end_sessions = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
    pg_cluster.psql(pg_cluster.url(), end_sessions + f"'{name}'")
    try:
        resp = await hub.client(a).signed("GET", "/v1/inbox")
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
        assert (await resp.json())["type"].endswith("/storage-unavailable")
        assert await probe(app) is False
        health = await http.get("/health")
        assert health.status == 503
        assert (await health.json())["status"] == "unreachable"
    finally:
        pg_cluster.psql(pg_cluster.url(), f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    # The pool reconnects by itself, with a backoff of a few seconds.
    async with asyncio.timeout(30):
        while not await probe(app):
            await asyncio.sleep(0.5)
    assert (await http.get("/health")).status == 200
    assert (await hub.client(a).signed("GET", "/v1/inbox")).status == 200
