"""HubClient against the fake hub: signed requests, typed answers, error mapping."""

from __future__ import annotations

import pytest

from demo.processes import free_port
from node.sync.client import BadHubUrl, HubClient, normalize_hub_url
from node.sync.errors import HubRefused, HubUnreachable
from protocol.hub_api import ProblemKind, problem_kind
from tests.sync.fakehub import FakeHub, fixed_keys
from tests.sync.helpers import Office, sealed


def client_for(office: Office, url: str) -> HubClient:
    return HubClient(url, keys=office.keys, node_id=office.node_id, request_timeout=2.0)


async def test_info_returns_the_hub_keys(hub: FakeHub, hub_url: str) -> None:
    """GET /v1/info decodes region and the hub's public keys."""
    async with HubClient(hub_url, keys=fixed_keys(5), node_id=None, request_timeout=2) as c:
        info = await c.info()
    assert info.hub_keys == hub.keys.public
    assert info.region == "Mittelfranken"
    assert info.fingerprint == hub.keys.public.fingerprint()


async def test_connection_refused_is_unreachable() -> None:
    """A closed port is a transient HubUnreachable with a one-line message naming the hub."""
    url = f"http://127.0.0.1:{free_port()}"
    async with HubClient(url, keys=fixed_keys(5), node_id=None, request_timeout=2) as c:
        with pytest.raises(HubUnreachable) as info:
            await c.info()
    assert url in str(info.value)
    assert "\n" not in str(info.value)


async def test_5xx_is_unreachable(hub: FakeHub, hub_url: str, office_a: Office) -> None:
    """A 503 from the hub counts as transient, not as a refusal."""
    hub.outage = True
    async with client_for(office_a, hub_url) as c:
        with pytest.raises(HubUnreachable, match="HTTP 503"):
            await c.fetch_inbox(0, 10)


async def test_problem_json_becomes_hub_refused(hub: FakeHub, hub_url: str) -> None:
    """A 4xx problem+json body yields HubRefused with the problem kind and detail."""
    stranger = HubClient(hub_url, keys=fixed_keys(77), node_id="nobody-here", request_timeout=2)
    async with stranger as c:
        with pytest.raises(HubRefused) as info:
            await c.fetch_inbox(0, 10)
    assert info.value.problem == "unknown-node"
    assert info.value.status == 401
    assert "not enrolled" in str(info.value)


async def test_signed_upload_fetch_and_ack_round_trip(
    hub: FakeHub, hub_url: str, office_a: Office, office_b: Office
) -> None:
    """An envelope uploaded by A is listed in B's inbox and gone after B acknowledges it."""
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    async with client_for(office_a, hub_url) as a:
        result = await a.upload([data])
    assert result.accepted == [msg_id]
    assert result.rejected == []
    async with client_for(office_b, hub_url) as b:
        page = await b.fetch_inbox(0, 10)
        assert [(m.id, m.envelope) for m in page.messages] == [(msg_id, data)]
        assert page.more is False
        assert await b.ack([msg_id]) == 1
        assert (await b.fetch_inbox(0, 10)).messages == []


async def test_upload_rejections_are_typed(
    hub: FakeHub, hub_url: str, office_a: Office, office_b: Office
) -> None:
    """A rejected envelope comes back with its id and problem kind."""
    hub.revoke(office_b.node_id)
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    async with client_for(office_a, hub_url) as a:
        result = await a.upload([data])
    assert result.accepted == []
    assert [(r.id, problem_kind(r.type)) for r in result.rejected] == [
        (msg_id, ProblemKind.UNKNOWN_RECIPIENT)
    ]


async def test_inbox_pages_with_cursor(
    hub: FakeHub, hub_url: str, office_a: Office, office_b: Office
) -> None:
    """With more messages than the limit, `more` is set and `next` continues the listing."""
    ids = []
    for _ in range(5):
        msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
        await hub.deliver(office_b.node_id, data, msg_id)
        ids.append(msg_id)
    async with client_for(office_b, hub_url) as b:
        first = await b.fetch_inbox(0, 3)
        second = await b.fetch_inbox(first.next, 3)
    assert first.more is True
    assert second.more is False
    assert [m.id for m in first.messages + second.messages] == ids


async def test_directory_not_modified_is_none(hub: FakeHub, hub_url: str, office_a: Office) -> None:
    """With the current ETag the hub answers 304 and the client returns None."""
    async with client_for(office_a, hub_url) as a:
        got = await a.directory(None)
        assert got is not None
        data, etag = got
        assert data == hub.directory_data
        assert await a.directory(etag) is None


async def test_stats_submission(hub: FakeHub, hub_url: str, office_a: Office) -> None:
    """POST /v1/stats returns the period and revision the hub stored."""
    async with client_for(office_a, hub_url) as a:
        assert await a.submit_stats(b"sealed-stats") == ("2026-11", 1)
    assert hub.stats == [b"sealed-stats"]


def test_hub_url_must_be_a_root_url() -> None:
    """A path, query or other scheme is refused; a trailing slash is dropped."""
    assert normalize_hub_url("https://hub.example.org/") == "https://hub.example.org"
    for bad in ("hub.example.org", "ftp://hub", "https://hub.example.org/api", "http://h/?x=1"):
        with pytest.raises(BadHubUrl):
            normalize_hub_url(bad)
