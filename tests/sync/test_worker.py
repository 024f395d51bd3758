"""SyncWorker against the fake hub: delivery bookkeeping, refusals, push, shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from node.sync.errors import DirectoryRejected, NotEnrolled
from node.sync.worker import SYNC_WORKER, SyncWorker, sync_ctx
from protocol.documents import Directory
from protocol.envelope import Envelope
from protocol.payloads import ExpiryNotice
from support.clock import Deps
from tests.clocks import FakeClock, MidpointRandom
from tests.sync.conftest import Spawn
from tests.sync.fakehub import FakeHub, fixed_keys
from tests.sync.fakes import FakeStore
from tests.sync.helpers import (
    Office,
    eventually,
    expiry_notice,
    fast_settings,
    outgoing,
    sealed,
)


def sync_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("mbe-sync")]


async def test_message_travels_from_a_to_b(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """A's outbox message is accepted by the hub, applied by B and acknowledged."""
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    a, b = spawn(office_a), spawn(office_b)
    await a.start()
    await b.start()
    await eventually(lambda: [m.msg_id for m in office_b.store.applied] == [msg.msg_id])
    await eventually(lambda: hub.pending(office_b.node_id) == [])
    await eventually(lambda: "last_error" in office_b.store.state)
    assert office_a.store.outbox == {}
    assert office_b.store.state["hub_reachable"] == "true"
    assert office_b.store.state["last_error"] == ""


async def test_upload_is_retried_after_an_outage_and_nothing_is_lost(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """While the hub answers 503 the message stays in the outbox; it is sent once the hub is up."""
    hub.outage = True
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    first = spawn(office_a)
    await first.start()
    await eventually(lambda: ("attempted", (msg.msg_id,)) in office_a.store.events)
    await eventually(lambda: office_a.store.state.get("hub_reachable") == "false")
    assert msg.msg_id in office_a.store.outbox
    assert "503" in office_a.store.state["last_error"]
    # A restart during the outage: the next worker picks the message up from the store.
    await first.stop()
    hub.outage = False
    second = spawn(office_a)
    await second.start()
    await eventually(lambda: office_a.store.outbox == {})
    assert hub.pending(office_b.node_id) == [msg.msg_id]
    assert office_a.store.outbox_pending(10) == []


async def test_permanent_rejection_flags_the_message(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """An envelope for a revoked recipient is marked rejected and not retried."""
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    hub.revoke(office_b.node_id)
    report = await spawn(office_a).sync_once()
    assert report.rejected == 1
    assert office_a.store.rejected == {msg.msg_id: "unknown-recipient: " + _detail_recipient()}
    uploads = sum(1 for r in hub.requests if r == ("POST", "/v1/messages"))
    await spawn(office_a).sync_once()
    assert sum(1 for r in hub.requests if r == ("POST", "/v1/messages")) == uploads


async def test_batch_refused_as_a_whole_is_sent_one_by_one(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """When the hub refuses a whole batch (too large), each message is tried alone."""
    hub.max_batch = 1
    msgs = [outgoing(office_a, office_b) for _ in range(3)]
    for m in msgs:
        office_a.store.put(m)
    report = await spawn(office_a, fast_settings(batch_size=3)).sync_once()
    assert report.uploaded == 3
    assert office_a.store.rejected == {}
    assert hub.pending(office_b.node_id) == [m.msg_id for m in msgs]


async def test_clock_skew_is_a_node_problem_not_a_message_problem(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """A clock-skew refusal keeps the message queued and tells the administrator why."""
    hub.clock = lambda: time.time() + 3600
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    worker = spawn(office_a)
    await worker.start()
    await eventually(lambda: "clock-skew" in office_a.store.state.get("last_error", ""))
    assert office_a.store.rejected == {}
    assert msg.msg_id in office_a.store.outbox
    assert office_a.store.state["hub_reachable"] == "true"


def _detail_recipient() -> str:
    return "the recipient is not an active enrolled node"


async def test_duplicates_are_dropped_but_acknowledged(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """A redelivered message (same id) is applied once and acknowledged both times."""
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    worker = spawn(office_b)
    await hub.deliver(office_b.node_id, data, msg_id)
    first = await worker.sync_once()
    await hub.deliver(office_b.node_id, data, msg_id)
    second = await worker.sync_once()
    assert (first.applied, second.applied, second.duplicates) == (1, 0, 1)
    assert [m.msg_id for m in office_b.store.applied] == [msg_id]
    assert office_b.store.events.count(("ack", msg_id)) == 2
    assert hub.pending(office_b.node_id) == []


async def test_ack_only_after_apply(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """The hub hears the ack after apply_incoming returned; a failed apply is not acked."""
    ok_id, ok = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    bad_id, bad = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    await hub.deliver(office_b.node_id, ok, ok_id)
    await hub.deliver(office_b.node_id, bad, bad_id)
    office_b.store.fail_apply.add(bad_id)
    worker = spawn(office_b)
    with pytest.raises(Exception, match="disk full"):
        await worker.sync_once()
    assert ("ack", bad_id) not in office_b.store.events
    assert hub.pending(office_b.node_id) == [ok_id, bad_id]
    # The store recovers: everything unacknowledged is fetched again; ok is a duplicate now.
    office_b.store.fail_apply.clear()
    report = await worker.sync_once()
    assert (report.applied, report.duplicates) == (1, 1)
    events = office_b.store.events
    for msg_id in (ok_id, bad_id):
        assert events.index(("apply", msg_id)) < events.index(("ack", msg_id))
    assert hub.pending(office_b.node_id) == []


async def test_unacknowledged_mail_is_fetched_after_a_restart(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """A message whose processing failed is applied by a fresh worker after restart."""
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    await hub.deliver(office_b.node_id, data, msg_id)
    office_b.store.fail_apply.add(msg_id)
    first = spawn(office_b)
    await first.start()
    await eventually(lambda: ("apply_failed", msg_id) in office_b.store.events)
    await eventually(lambda: "StoreFailure" in office_b.store.state.get("last_error", ""))
    await first.stop()
    office_b.store.fail_apply.clear()
    await spawn(office_b).start()
    await eventually(lambda: hub.pending(office_b.node_id) == [])
    assert [m.msg_id for m in office_b.store.applied] == [msg_id]


async def test_unknown_sender_is_refused_recorded_and_acked(
    hub: FakeHub, office_b: Office, spawn: Spawn
) -> None:
    """A sender not in the directory (even after a refresh) is refused, recorded, acked."""
    stranger = fixed_keys(55)
    msg_id, data = sealed("not-an-office", stranger, office_b.node_id, office_b.public)
    worker = spawn(office_b)
    await worker.sync_once()
    fetches = hub.requests.count(("GET", "/v1/directory"))
    await hub.deliver(office_b.node_id, data, msg_id)
    report = await worker.sync_once()
    assert report.refused == 1
    assert office_b.store.refused == [(msg_id, "not-an-office", "unknown-sender")]
    assert office_b.store.applied == []
    # One refresh to look for a newly enrolled office before refusing.
    assert hub.requests.count(("GET", "/v1/directory")) == fetches + 1
    assert hub.pending(office_b.node_id) == []


async def test_new_office_is_found_by_refreshing_the_directory(
    hub: FakeHub, office_b: Office, spawn: Spawn
) -> None:
    """Mail from an office enrolled after our last refresh is applied, not refused."""
    worker = spawn(office_b)
    await worker.sync_once()
    newcomer = fixed_keys(44)
    hub.register("jmd-erlangen", newcomer.public)
    msg_id, data = sealed("jmd-erlangen", newcomer, office_b.node_id, office_b.public)
    await hub.deliver(office_b.node_id, data, msg_id)
    report = await worker.sync_once()
    assert report.applied == 1
    assert office_b.store.refused == []


async def test_revoked_sender_is_refused(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """Once the directory says an office is revoked, its queued messages are refused."""
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    await hub.deliver(office_b.node_id, data, msg_id)
    hub.revoke(office_a.node_id)
    report = await spawn(office_b).sync_once()
    assert report.refused == 1
    assert office_b.store.refused == [(msg_id, office_a.node_id, "revoked-sender")]
    assert hub.pending(office_b.node_id) == []


async def test_tampered_envelope_is_refused(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """A ciphertext changed in transit is refused and recorded; nothing is applied."""
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    env = Envelope.decode(data)
    ct = bytearray(env.ciphertext)
    ct[40] ^= 0xFF
    tampered = Envelope(env.msg_id, env.sender, env.recipient, env.expires, bytes(ct))
    await hub.deliver(office_b.node_id, tampered.encode(), msg_id)
    report = await spawn(office_b).sync_once()
    assert report.refused == 1
    assert office_b.store.refused == [(msg_id, office_a.node_id, "bad-signature")]
    assert office_b.store.applied == []


async def test_expiry_notice_from_the_hub_is_applied(
    hub: FakeHub, office_b: Office, spawn: Spawn
) -> None:
    """A relay.expired notice signed with the hub key reaches the domain."""
    msg_id, data = expiry_notice(hub, office_b)
    await hub.deliver(office_b.node_id, data, msg_id)
    await spawn(office_b).sync_once()
    assert [type(m.payload) for m in office_b.store.applied] == [ExpiryNotice]


def bad_directory(hub: FakeHub, case: str) -> bytes:
    """A directory that is older than the hub's, already expired, or signed by a stranger."""
    now = int(hub.clock())
    signer = fixed_keys(66) if case == "unsigned" else hub.keys
    version = hub.directory_version + (-1 if case == "older" else 1)
    expires = now - 1 if case == "expired" else now + 3600
    return Directory(version=version, issued=now, expires=expires, region="MF", offices=()).sign(
        signer
    )


@pytest.mark.parametrize("case", ["older", "expired", "unsigned"])
async def test_bad_directory_is_refused_and_the_held_one_kept(
    hub: FakeHub, office_b: Office, spawn: Spawn, case: str
) -> None:
    """An older, expired or foreign-signed directory is refused; the held one stays in use."""
    hub.publish()  # version 2, so that there is an older one
    worker = spawn(office_b, fast_settings(directory_refresh=0.001))
    await worker.sync_once()
    held = office_b.store.directory
    assert held is not None
    hub.directory_override = bad_directory(hub, case)
    await asyncio.sleep(0.01)
    await worker.sync_once()
    assert office_b.store.directory == held
    assert "refused the hub's directory" in office_b.store.state["last_error"]


@pytest.mark.parametrize("case", ["expired", "unsigned"])
async def test_without_a_usable_directory_messages_wait(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn, case: str
) -> None:
    """With no valid directory the cycle stops before judging mail: nothing refused or acked."""
    hub.directory_override = bad_directory(hub, case)
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    await hub.deliver(office_b.node_id, data, msg_id)
    with pytest.raises(DirectoryRejected):
        await spawn(office_b).sync_once()
    assert office_b.store.directory is None
    assert office_b.store.refused == []
    assert hub.pending(office_b.node_id) == [msg_id]


async def test_push_delivers_faster_than_polling(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """With a 30 s poll interval, a pushed "mail" frame gets the message applied far sooner."""
    worker = spawn(office_b, fast_settings(poll_interval=30.0))
    await worker.start()
    await eventually(lambda: worker.push_connected)
    await eventually(lambda: office_b.store.state.get("last_sync") is not None)
    assert office_b.store.state["push_connected"] == "true"
    await asyncio.sleep(0.05)  # the worker is idle, waiting for its next poll
    msg_id, data = sealed(office_a.node_id, office_a.keys, office_b.node_id, office_b.public)
    await hub.deliver(office_b.node_id, data, msg_id)
    took = await eventually(lambda: len(office_b.store.applied) == 1, timeout=3.0)
    assert took < 3.0


async def test_wake_sends_the_outbox_at_once(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """wake() after putting a message in the outbox uploads it without waiting for a poll."""
    worker = spawn(office_a, fast_settings(poll_interval=30.0, push=False))
    await worker.start()
    await eventually(lambda: office_a.store.state.get("last_sync") is not None)
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    worker.wake()
    await eventually(lambda: hub.pending(office_b.node_id) == [msg.msg_id], timeout=3.0)


async def test_push_reconnects_after_the_hub_drops_it(
    hub: FakeHub, office_b: Office, spawn: Spawn
) -> None:
    """When the hub closes the WebSocket the worker notices and connects again."""
    worker = spawn(office_b)
    await worker.start()
    await eventually(lambda: len(hub.sockets.get(office_b.node_id, ())) == 1)
    for ws in list(hub.sockets[office_b.node_id]):
        await ws.close()
    await eventually(lambda: office_b.store.state["push_connected"] == "false")
    await eventually(lambda: worker.push_connected)
    assert hub.requests.count(("GET", "/v1/ws")) >= 2


async def test_worker_stops_cleanly(office_b: Office, spawn: Spawn) -> None:
    """stop() cancels and awaits every task, closes the session and marks push down."""
    worker = spawn(office_b)
    await worker.start()
    await eventually(lambda: worker.push_connected)
    assert len(sync_tasks()) == 2
    await worker.stop()
    assert sync_tasks() == []
    assert worker.push_connected is False
    assert office_b.store.state["push_connected"] == "false"


async def test_not_enrolled_worker_waits_and_says_why(spawn: Spawn) -> None:
    """Without an enrollment the worker makes no request and records the reason."""
    store = FakeStore()
    worker = spawn(Office("caritas-nuernberg", fixed_keys(20), store))
    with pytest.raises(NotEnrolled):
        await worker.sync_once()
    await worker.start()
    await eventually(lambda: "not enrolled" in store.state.get("last_error", ""))


async def test_sync_ctx_runs_the_worker_with_the_app(
    office_b: Office, aiohttp_server: AiohttpServer
) -> None:
    """As an aiohttp cleanup_ctx the worker starts with the app and is gone after cleanup."""
    app = web.Application()
    app[SYNC_WORKER] = SyncWorker(fast_settings(), office_b.store, office_b.keys)
    app.cleanup_ctx.append(sync_ctx)
    server = await aiohttp_server(app, host="127.0.0.1")
    await eventually(lambda: app[SYNC_WORKER].push_connected)
    await server.close()
    assert sync_tasks() == []


async def test_answers_queued_while_applying_go_up_in_the_same_cycle(
    hub: FakeHub, office_a: Office, office_b: Office, spawn: Spawn
) -> None:
    """A receipt B queues while applying A's message reaches the hub before B's
    cycle ends, not one poll interval later."""
    office_b.store.answer = lambda inner: outgoing(office_b, office_a)
    msg = outgoing(office_a, office_b)
    office_a.store.put(msg)
    await spawn(office_a).sync_once()
    report = await spawn(office_b, fast_settings(poll_interval=3600.0)).sync_once()
    assert [m.msg_id for m in office_b.store.applied] == [msg.msg_id]
    assert office_b.store.outbox == {}
    assert len(hub.pending(office_a.node_id)) == 1
    assert report.uploaded == 1


async def test_the_measured_clock_offset_is_recorded(
    hub: FakeHub, office_a: Office, office_b: Office
) -> None:
    """A node an hour ahead is refused for clock skew, and records by how much, from
    the Date of the hub's answer, so the status views can say it plainly."""
    ahead = Deps(clock=FakeClock(int(time.time()) + 3600), random=MidpointRandom())
    office_a.store.put(outgoing(office_a, office_b))
    worker = SyncWorker(fast_settings(), office_a.store, office_a.keys, deps=ahead)
    await worker.start()
    try:
        await eventually(lambda: "clock_offset" in office_a.store.state)
        assert 3590 <= int(office_a.store.state["clock_offset"]) <= 3610
        assert "clock-skew" in office_a.store.state.get("last_error", "")
    finally:
        await worker.stop()
