"""HubClient with several URLs of one hub, over real HTTP on loopback: which
failures move a request to the next URL, which answers are final, stickiness."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from structlog.testing import capture_logs

from node.sync.client import HubClient
from node.sync.errors import HubRefused, HubUnreachable
from node.sync.hub_urls import HubUrls
from protocol.requests import sign_request
from tests.sync.fakehub import FakeHub, fixed_keys
from tests.sync.helpers import Office, sealed
from tests.sync.hubfarm import (
    Blackhole,
    HubProcess,
    dead_url,
    lossy_proxy,
)

UPLOAD = "/v1/messages"


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


@pytest.fixture
async def made() -> AsyncIterator[list[HubClient]]:
    clients: list[HubClient] = []
    yield clients
    for c in clients:
        await c.close()


async def client(
    made: list[HubClient], office: Office, urls: list[str] | HubUrls, timeout: float = 2.0
) -> HubClient:
    c = HubClient(urls, keys=office.keys, node_id=office.node_id, request_timeout=timeout)
    await c.start()
    made.append(c)
    return c


async def test_a_dead_first_url_moves_the_request_to_the_next(
    hub: FakeHub, p1: HubProcess, office_a: Office, office_b: Office, made: list[HubClient]
) -> None:
    """Connection refused at the first URL: the upload reaches the hub through the second."""
    dead = dead_url()
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    a = await client(made, office_a, [dead, p1.url])
    with capture_logs() as logs:
        result = await a.upload([data])
    assert result.accepted == [msg_id]
    assert hub.pending(office_b.node_id) == [msg_id]
    assert a.hub_url == p1.url
    changed = [e for e in logs if e["event"] == "hub.url_changed"]
    assert [(e["url"], e["previous"]) for e in changed] == [(p1.url, dead)]
    assert dead in changed[0]["reason"]


async def test_a_timeout_costs_once_then_the_url_that_answered_is_used(
    hub: FakeHub,
    p1: HubProcess,
    blackhole: Blackhole,
    office_a: Office,
    made: list[HubClient],
) -> None:
    """A first URL that never answers costs one request timeout, not one per request."""
    a = await client(made, office_a, [blackhole.url, p1.url], timeout=0.5)
    start = time.monotonic()
    await a.fetch_inbox(0, 10)
    first = time.monotonic() - start
    start = time.monotonic()
    for _ in range(5):
        await a.fetch_inbox(0, 10)
    rest = time.monotonic() - start
    assert first >= 0.5
    assert rest < 1.0  # five requests; not one of them waited for the first URL
    assert p1.count("/v1/inbox") == 6


async def test_a_proxys_502_503_504_move_on_but_4xx_and_500_do_not(
    hub: FakeHub,
    p1: HubProcess,
    p2: HubProcess,
    office_a: Office,
    made: list[HubClient],
    aiohttp_server: AiohttpServer,
) -> None:
    """502-504 from in front of a hub: next URL. A 401 or 500 is the hub's answer: final."""
    for status in (502, 503, 504):
        p1.door.down = True
        p1.door.hits.clear()
        a = await client(made, office_a, [p1.url, p2.url])
        await a.fetch_inbox(0, 10)
        assert (p1.count("/v1/inbox"), a.hub_url) == (1, p2.url), status
    p1.door.down = False
    # A 4xx (this node unknown to the hub) is not asked again elsewhere.
    stranger = Office("nobody-here", fixed_keys(77), office_a.store)
    before = p2.count("/v1/inbox")
    s = await client(made, stranger, [p1.url, p2.url])
    with pytest.raises(HubRefused) as refused:
        await s.fetch_inbox(0, 10)
    assert (refused.value.status, refused.value.problem) == (401, "unknown-node")
    assert p2.count("/v1/inbox") == before
    assert s.hub_url == p1.url
    # A 500 from the hub itself: transient, but final for this request.
    broken = web.Application()
    broken.router.add_route("*", "/{tail:.*}", _internal_error)
    server = await aiohttp_server(broken, host="127.0.0.1")
    first = str(server.make_url("/")).rstrip("/")
    b = await client(made, office_a, [first, p2.url])
    with pytest.raises(HubUnreachable) as failed:
        await b.fetch_inbox(0, 10)
    assert failed.value.hub_status == 500
    assert p2.count("/v1/inbox") == before


async def _internal_error(request: web.Request) -> web.Response:
    return web.Response(status=500, text="internal error")


async def test_an_upload_whose_answer_was_lost_is_sent_again_once_stored(
    hub: FakeHub,
    p1: HubProcess,
    office_a: Office,
    office_b: Office,
    made: list[HubClient],
    aiohttp_server: AiohttpServer,
) -> None:
    """The hub committed an upload behind a proxy that lost the answer: the retry at the
    next URL (signed again: the first nonce is spent) is accepted; the hub holds it once."""
    proxy = await lossy_proxy(p1.url, aiohttp_server)
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    a = await client(made, office_a, [proxy.url, p1.url])
    result = await a.upload([data])
    assert proxy.forwarded == [("POST", UPLOAD, 200)]
    assert result.accepted == [msg_id]
    assert p1.count(UPLOAD) == 2
    assert hub.pending(office_b.node_id) == [msg_id]
    assert list(hub.stored) == [msg_id]


async def test_a_replayed_signature_would_be_refused(
    hub: FakeHub, p1: HubProcess, p2: HubProcess, office_a: Office
) -> None:
    """Why each URL gets a new signature: the hub processes share one nonce table."""
    headers = sign_request(
        "GET",
        "/v1/inbox?after=0&limit=10",
        b"",
        node_id=office_a.node_id,
        keys=office_a.keys,
        timestamp=int(time.time()),
        nonce="ab" * 16,
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(p1.url + "/v1/inbox?after=0&limit=10", headers=headers) as r:
            assert r.status == 200
        async with session.get(p2.url + "/v1/inbox?after=0&limit=10", headers=headers) as r:
            assert r.status == 401


async def test_no_url_answering_is_one_line_naming_each(
    p1: HubProcess, office_a: Office, made: list[HubClient]
) -> None:
    """Every URL down: HubUnreachable in one line with each URL, the proxy's status kept."""
    dead = dead_url()
    p1.door.down = True
    a = await client(made, office_a, [dead, p1.url])
    with pytest.raises(HubUnreachable) as failed:
        await a.fetch_inbox(0, 10)
    text = str(failed.value)
    assert "\n" not in text
    assert dead in text
    assert p1.url in text
    assert "is not reachable" in text
    assert failed.value.hub_status == 502
    assert a.hub_url == dead


async def test_requests_drift_back_to_the_first_url(
    hub: FakeHub, p1: HubProcess, p2: HubProcess, office_a: Office, made: list[HubClient]
) -> None:
    """While the first URL is down the second is used; once the period passed and the
    first is back, requests go to the first again."""
    now = [0.0]
    urls = HubUrls([p1.url, p2.url], prefer_first_after=300, monotonic=lambda: now[0])
    a = await client(made, office_a, urls)
    p1.door.down = True
    await a.fetch_inbox(0, 10)
    p1.door.down = False
    now[0] = 299.0
    for _ in range(3):
        await a.fetch_inbox(0, 10)
    assert (p1.count("/v1/inbox"), p2.count("/v1/inbox")) == (1, 4)
    now[0] = 300.0
    for _ in range(3):
        await a.fetch_inbox(0, 10)
    assert (p1.count("/v1/inbox"), p2.count("/v1/inbox")) == (4, 4)
    assert a.hub_url == p1.url


async def test_push_connects_to_the_next_url_that_answers(
    hub: FakeHub, p1: HubProcess, p2: HubProcess, office_a: Office, made: list[HubClient]
) -> None:
    """The WebSocket handshake moves on from a dead URL and a proxy's 502."""
    p1.door.down = True
    a = await client(made, office_a, [dead_url(), p1.url, p2.url])
    ws = await a.connect_push(heartbeat=5.0)
    try:
        assert a.hub_url == p2.url
        assert p2.count("/v1/ws") == 1
        assert len(hub.sockets[office_a.node_id]) == 1
    finally:
        await ws.close()
