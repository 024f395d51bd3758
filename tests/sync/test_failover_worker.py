"""SyncWorker with several URLs of one hub (real HTTP on loopback): a dead URL,
a hub process that stops, answers lost on the way, a list changed while it runs."""

from __future__ import annotations

from dataclasses import replace

from pytest_aiohttp import AiohttpServer

from tests.sync.conftest import Spawn
from tests.sync.fakehub import FakeHub
from tests.sync.helpers import Office, eventually, fast_settings, outgoing, sealed
from tests.sync.hubfarm import HubProcess, dead_url, lossy_proxy


def use(office: Office, *urls: str) -> None:
    """The office's enrollment lists these hub URLs, in this order."""
    assert office.store.enrollment is not None
    office.store.enrollment = replace(office.store.enrollment, hub_urls=urls)


def applied(office: Office) -> list[str]:
    return [m.msg_id for m in office.store.applied]


def applied_once(office: Office, ids: list[str]) -> bool:
    """Each id applied exactly once, and nothing else."""
    events = [e[1] for e in office.store.events if e[0] == "apply"]
    return sorted(events) == sorted(ids)


async def test_a_dead_first_url_sends_fetches_and_gets_push(
    hub: FakeHub, p1: HubProcess, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """Given [dead URL, live hub], a node uploads, fetches and holds the push channel."""
    dead = dead_url()
    use(office_a, dead, p1.url)
    use(office_b, dead, p1.url)
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    a, b = spawn(office_a), spawn(office_b)
    await a.start()
    await b.start()
    await eventually(lambda: applied(office_b) == [msg.msg_id])
    await eventually(lambda: a.push_connected and b.push_connected)
    await eventually(lambda: "last_sync" in office_a.store.state)
    # Mail for A now arrives by push: A would not poll for another 30 s.
    reply_id, reply = sealed(office_b.node_id, office_b.keys, office_a.node_id, office_a.public)
    await hub.deliver(office_a.node_id, reply, reply_id)
    await eventually(lambda: applied(office_a) == [reply_id], timeout=3.0)
    assert office_a.store.outbox == {}
    await eventually(lambda: hub.pending(office_a.node_id) == hub.pending(office_b.node_id) == [])
    assert p1.count("/v1/ws") == 2
    for office in (office_a, office_b):
        assert office.store.state["hub_in_use"] == p1.url
        assert office.store.state["hub_reachable"] == "true"
        assert office.store.state["last_error"] == ""


async def test_when_one_of_two_hub_processes_stops_the_nodes_carry_on(
    hub: FakeHub,
    p1: HubProcess,
    p2: HubProcess,
    office_a: Office,
    office_b: Office,
    spawn: Spawn,
) -> None:
    """The process in use stops mid-traffic: both nodes go on with the other one, push
    included; every message arrives exactly once, nothing is left behind."""
    for office in (office_a, office_b):
        use(office, p1.url, p2.url)
    a, b = spawn(office_a), spawn(office_b)
    await a.start()
    await b.start()
    await eventually(lambda: a.push_connected and b.push_connected)
    before = [outgoing(office_a, office_b) for _ in range(3)]
    for m in before:
        office_a.store.put(m)
    a.wake()
    await eventually(lambda: applied(office_b) == [m.msg_id for m in before])
    assert p2.hits == []
    # More mail both ways, and the process in use stops while it is on its way.
    after = [outgoing(office_a, office_b) for _ in range(3)]
    for m in after:
        office_a.store.put(m)
    back = outgoing(office_b, office_a)
    office_b.store.put(back)
    a.wake()
    b.wake()
    await p1.stop()
    sent = [m.msg_id for m in before + after]
    await eventually(lambda: len(office_b.store.applied) == 6, timeout=8.0)
    await eventually(lambda: applied(office_a) == [back.msg_id], timeout=8.0)
    # Push is back, through the other process.
    await eventually(lambda: p2.count("/v1/ws") == 2, timeout=8.0)
    await eventually(lambda: a.push_connected and b.push_connected)
    assert applied_once(office_b, sent)
    assert applied_once(office_a, [back.msg_id])
    assert office_a.store.outbox == office_b.store.outbox == {}
    assert sorted(hub.stored) == sorted([*sent, back.msg_id])
    await eventually(lambda: hub.pending(office_b.node_id) == hub.pending(office_a.node_id) == [])
    # Mail pushed after the switch still arrives at once.
    late_id, late = sealed(office_b.node_id, office_b.keys, office_a.node_id, office_a.public)
    await hub.deliver(office_a.node_id, late, late_id)
    await eventually(lambda: applied(office_a) == [back.msg_id, late_id], timeout=3.0)
    for office in (office_a, office_b):
        assert office.store.state["hub_in_use"] == p2.url


async def test_answers_lost_in_front_of_the_hub_lose_and_duplicate_nothing(
    hub: FakeHub,
    p1: HubProcess,
    office_a: Office,
    office_b: Office,
    spawn: Spawn,
    aiohttp_server: AiohttpServer,
) -> None:
    """The first URL passes requests to the hub and loses the answers: the upload is
    stored once, the outbox retires it once, the recipient applies it once."""
    proxy = await lossy_proxy(p1.url, aiohttp_server)
    use(office_a, proxy.url, p1.url)
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    report = await spawn(office_a).sync_once()
    assert report.uploaded == 1
    assert proxy.forwarded[0] == ("POST", "/v1/messages", 200)
    assert hub.events.count(("hub_stored", msg.msg_id)) == 2  # the retry, accepted again
    assert [e for e in office_a.store.events if e[0] == "accepted"] == [("accepted", (msg.msg_id,))]
    use(office_b, proxy.url, p1.url)
    await spawn(office_b).sync_once()
    assert applied_once(office_b, [msg.msg_id])
    assert hub.pending(office_b.node_id) == []


async def test_a_list_changed_while_serving_is_used_without_a_restart(
    hub: FakeHub, p1: HubProcess, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """The only URL is dead; `hub-urls` stores a live one: the next cycle uses it."""
    use(office_a, dead_url())
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    worker = spawn(office_a, fast_settings(push=False))
    await worker.start()
    await eventually(lambda: office_a.store.state.get("hub_reachable") == "false")
    office_a.store.set_hub_urls([p1.url])
    await eventually(lambda: office_a.store.outbox == {}, timeout=3.0)
    assert hub.pending(office_b.node_id) == [msg.msg_id]
    await eventually(lambda: office_a.store.state.get("hub_in_use") == p1.url)


async def test_a_restarted_worker_starts_at_the_url_it_used_last(
    hub: FakeHub, p1: HubProcess, p2: HubProcess, office_a: Office, spawn: Spawn
) -> None:
    """The URL in use is recorded; the next run starts there instead of the first URL."""
    use(office_a, p1.url, p2.url)
    p1.door.down = True
    await spawn(office_a, fast_settings(push=False)).sync_once()
    await eventually(lambda: office_a.store.state.get("hub_in_use") == p2.url)
    p1.door.down = False
    p1.door.hits.clear()
    await spawn(office_a, fast_settings(push=False)).sync_once()
    assert p1.hits == []
    assert p2.count("/v1/inbox") == 2
