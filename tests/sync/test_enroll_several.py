"""Enrolling with several hub URLs, and changing them later (`mbe-node hub-urls`):
the single-use code survives a retry at the next URL, and a URL of another hub
is refused before anything is stored."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from node.sync.enroll import change_hub_urls, enroll
from node.sync.errors import HubKeyMismatch, NotEnrolled, OtherHub
from node.sync.hub_urls import BadHubUrl
from tests.sync.fakehub import FakeHub, fixed_keys
from tests.sync.fakes import FakeStore
from tests.sync.helpers import Office, fast_settings
from tests.sync.hubfarm import HubProcess, dead_url, serve_process

ENROLL = "/v1/enroll"


async def _not_a_hub(aiohttp_server: AiohttpServer) -> str:
    """A web server that is not a hub: 404 for everything."""
    server = await aiohttp_server(web.Application(), host="127.0.0.1")
    return str(server.make_url("/")).rstrip("/")


async def test_a_lost_enrollment_answer_is_retried_at_the_next_url(
    hub: FakeHub, p1: HubProcess, p2: HubProcess
) -> None:
    """The hub used the code behind the first URL and the answer was lost (502): the
    retry at the second URL gets the same enrollment, in one run of enroll."""
    code = hub.add_site("diakonie-erlangen")
    hub.lose_enroll_answers = 1
    store, keys = FakeStore(), fixed_keys(30)
    state = await enroll(fast_settings(), store, keys, [p1.url, p2.url + "/"], code)
    assert (p1.count(ENROLL), p2.count(ENROLL)) == (1, 1)
    assert state.hub_urls == (p1.url, p2.url)
    assert state.node_id == "diakonie-erlangen"
    assert store.enrollment == state
    assert hub.sites["diakonie-erlangen"].keys == keys.public
    # The code was used once, by these keys; other keys are still refused.
    assert [c.used for c in hub.codes.values()] == [True]


async def test_a_dead_url_in_the_list_does_not_stop_enrollment(
    hub: FakeHub, p1: HubProcess
) -> None:
    """A URL that does not answer now is kept in the list; the next one enrolls."""
    code = hub.add_site("diakonie-erlangen")
    dead = dead_url()
    store = FakeStore()
    state = await enroll(fast_settings(), store, fixed_keys(30), [dead, p1.url], code)
    assert state.hub_urls == (dead, p1.url)
    assert store.enrollment is not None


async def test_a_url_of_another_hub_is_refused_before_the_code_is_used(
    hub: FakeHub, p1: HubProcess, aiohttp_server: AiohttpServer
) -> None:
    """Any listed URL presenting keys the code does not name: DANGER, nothing sent or saved."""
    code = hub.add_site("diakonie-erlangen")
    other = await serve_process(FakeHub(keys=fixed_keys(66)), aiohttp_server)
    store = FakeStore()
    with pytest.raises(HubKeyMismatch, match=other.url):
        await enroll(fast_settings(), store, fixed_keys(30), [p1.url, other.url], code)
    assert p1.count(ENROLL) == 0
    assert store.enrollment is None
    assert [c.used for c in hub.codes.values()] == [False]


async def test_a_url_that_is_not_a_hub_is_refused(
    hub: FakeHub, p1: HubProcess, aiohttp_server: AiohttpServer
) -> None:
    """A listed URL answering 404 to /v1/info is a mistake, said before enrolling."""
    code = hub.add_site("diakonie-erlangen")
    web_site = await _not_a_hub(aiohttp_server)
    store = FakeStore()
    with pytest.raises(OtherHub, match="does not answer as a hub"):
        await enroll(fast_settings(), store, fixed_keys(30), [p1.url, web_site], code)
    assert store.enrollment is None
    assert p1.count(ENROLL) == 0


@pytest.fixture
def enrolled(hub: FakeHub, p1: HubProcess, office_a: Office) -> FakeStore:
    """Office A's store, enrolled with the hub at p1 only."""
    store = office_a.store
    assert store.enrollment is not None
    store.enrollment = replace(store.enrollment, hub_urls=(p1.url,))
    return store


async def test_the_list_is_replaced_after_checking_each_url(
    p1: HubProcess, p2: HubProcess, office_a: Office, enrolled: FakeStore
) -> None:
    """Both processes present the enrolled hub's keys; a dead URL is kept, reported."""
    dead = dead_url()
    done = await change_hub_urls(fast_settings(), enrolled, office_a.keys, [p2.url, dead, p1.url])
    assert done.urls == (p2.url, dead, p1.url)
    assert list(done.unreachable) == [dead]
    assert "not reachable" in done.unreachable[dead]
    assert enrolled.enrollment is not None
    assert enrolled.enrollment.hub_urls == (p2.url, dead, p1.url)
    assert (p1.count("/v1/info"), p2.count("/v1/info")) == (1, 1)


async def test_another_hub_or_a_bad_url_leaves_the_list_as_it_was(
    p1: HubProcess, office_a: Office, enrolled: FakeStore, aiohttp_server: AiohttpServer
) -> None:
    """OtherHub for another hub's URL or a web site, BadHubUrl for a malformed one."""
    other = await serve_process(FakeHub(keys=fixed_keys(66)), aiohttp_server)
    before = enrolled.enrollment
    with pytest.raises(OtherHub, match=f"{other.url} is another hub"):
        await change_hub_urls(fast_settings(), enrolled, office_a.keys, [p1.url, other.url])
    with pytest.raises(OtherHub, match="does not answer as a hub"):
        await change_hub_urls(
            fast_settings(), enrolled, office_a.keys, [p1.url, await _not_a_hub(aiohttp_server)]
        )
    info_before = p1.count("/v1/info")
    with pytest.raises(BadHubUrl, match="path or query"):
        await change_hub_urls(
            fast_settings(), enrolled, office_a.keys, [p1.url, "https://hub.example.org/api"]
        )
    assert p1.count("/v1/info") == info_before  # refused before any request
    assert enrolled.enrollment == before
    assert not [e for e in enrolled.events if e[0] == "set_hub_urls"]


async def test_changing_the_urls_needs_an_enrollment(p1: HubProcess) -> None:
    """A node that is not enrolled has no list to change."""
    with pytest.raises(NotEnrolled):
        await change_hub_urls(fast_settings(), FakeStore(), fixed_keys(30), [p1.url])
