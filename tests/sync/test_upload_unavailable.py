"""A hub that cannot take uploads (its disk is full: 507 storage-full) still delivers:
the node drains its inbox in the same cycle, keeps its outbox, and backs off
(issue 10, item 8)."""

from __future__ import annotations

import pytest

from node.sync.client import HubClient, _retry_after
from node.sync.errors import HubUnreachable
from node.sync.worker import SyncWorker
from tests.sync.fakehub import FakeHub
from tests.sync.helpers import Office, eventually, fast_settings, outgoing, sealed


async def _mail_for(hub: FakeHub, recipient: Office, sender: Office) -> str:
    msg_id, data = sealed(sender.node_id, sender.keys, recipient.node_id, recipient.public)
    await hub.deliver(recipient.node_id, data, msg_id)
    return msg_id


async def test_the_inbox_is_drained_while_uploads_are_refused(
    hub: FakeHub, office_a: Office, office_b: Office
) -> None:
    mine = outgoing(office_a, office_b)
    office_a.store.put(mine)
    waiting = await _mail_for(hub, office_a, office_b)
    hub.storage_full = True
    worker = SyncWorker(fast_settings(), office_a.store, office_a.keys)
    try:
        with pytest.raises(HubUnreachable) as failed:
            await worker.sync_once()
        # The upload's failure is the cycle's result (so the loop backs off) ...
        assert failed.value.hub_status == 507
        assert failed.value.retry_after == 30
        assert "storage-full" in str(failed.value)
        # ... after the inbox was drained and acknowledged.
        assert [m.msg_id for m in office_a.store.applied] == [waiting]
        assert hub.pending(office_a.node_id) == []
        # The outbox keeps what the hub did not take, and no second upload was tried.
        assert mine.msg_id in office_a.store.outbox
        assert ("attempted", (mine.msg_id,)) in office_a.store.events
        assert sum(1 for r in hub.requests if r == ("POST", "/v1/messages")) == 1
        hub.storage_full = False
        await worker.sync_once()
        assert office_a.store.outbox == {}
        assert hub.pending(office_b.node_id) == [mine.msg_id]
    finally:
        await worker.stop()


async def test_a_running_worker_keeps_receiving_while_uploads_fail(
    hub: FakeHub, office_a: Office, office_b: Office
) -> None:
    office_a.store.put(outgoing(office_a, office_b))
    hub.storage_full = True
    worker = SyncWorker(fast_settings(poll_interval=0.05), office_a.store, office_a.keys)
    await worker.start()
    try:
        await eventually(lambda: office_a.store.state.get("hub_reachable") == "false")
        assert "storage-full" in office_a.store.state["last_error"]
        first = await _mail_for(hub, office_a, office_b)
        second = await _mail_for(hub, office_a, office_b)
        await eventually(lambda: [m.msg_id for m in office_a.store.applied] == [first, second])
        await eventually(lambda: hub.pending(office_a.node_id) == [])
        assert len(office_a.store.outbox) == 1
        hub.storage_full = False
        await eventually(lambda: office_a.store.outbox == {})
        await eventually(lambda: office_a.store.state.get("hub_reachable") == "true")
    finally:
        await worker.stop()


async def test_the_client_reads_the_problem_kind_and_retry_after(
    hub: FakeHub, hub_url: str, office_a: Office, office_b: Office
) -> None:
    hub.storage_full = True
    msg = outgoing(office_a, office_b)
    async with HubClient(
        hub_url, keys=office_a.keys, node_id=office_a.node_id, request_timeout=2.0
    ) as client:
        with pytest.raises(HubUnreachable) as failed:
            await client.upload([msg.envelope])
    assert (failed.value.hub_status, failed.value.retry_after) == (507, 30)
    assert str(failed.value).endswith("is not available (HTTP 507 storage-full)")


def test_retry_after_takes_seconds_or_a_date_and_ignores_the_rest() -> None:
    assert _retry_after("30", now=0) == 30
    assert _retry_after(" 7 ", now=0) == 7
    assert _retry_after("99999999", now=0) == 86400
    assert _retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40) == 60
    assert _retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=400) == 0
    for odd in (None, "", "soon", "-5", "3.5", "²"):
        assert _retry_after(odd, now=0) is None
