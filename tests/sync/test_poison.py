"""One message that cannot be applied never blocks the messages behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from node.sync.errors import ApplyDeferred, ApplyRefused
from node.sync.worker import SyncWorker
from protocol.errors import MalformedError
from support.clock import Deps, SystemClock
from tests.clocks import MidpointRandom
from tests.sync.fakehub import FakeHub
from tests.sync.fakes import FakeStore
from tests.sync.helpers import Office, enrolled_office, fast_settings, sealed

Spawn = Callable[[Office], SyncWorker]

# Real time; backoff jitter just above 0.5, fresh nonces.
_DEPS = Deps(clock=SystemClock(), random=MidpointRandom())


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Workers that are stopped at teardown."""
    made: list[SyncWorker] = []

    def make(office: Office) -> SyncWorker:
        w = SyncWorker(fast_settings(), office.store, office.keys, deps=_DEPS)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.stop()


@pytest.fixture
def office_c(hub: FakeHub, hub_url: str) -> Office:
    return enrolled_office(hub, hub_url, "diakonie-erlangen", 30, FakeStore())


async def _queue(hub: FakeHub, sender: Office, recipient: Office) -> str:
    msg_id, data = sealed(sender.node_id, sender.keys, recipient.node_id, recipient.public)
    await hub.deliver(recipient.node_id, data, msg_id)
    return msg_id


@pytest.mark.parametrize(
    "poison",
    [MalformedError("cannot seal to this key"), ApplyRefused("not-applicable: malformed")],
    ids=["protocol-error", "apply-refused"],
)
async def test_a_permanently_failing_message_is_refused_and_the_rest_applied(
    hub: FakeHub,
    office_a: Office,
    office_b: Office,
    office_c: Office,
    spawn: Spawn,
    poison: Exception,
) -> None:
    """A message whose answer cannot be sealed is refused and acked; the ones behind it apply."""
    bad = await _queue(hub, office_c, office_b)
    from_a = await _queue(hub, office_a, office_b)
    from_c = await _queue(hub, office_c, office_b)
    office_b.store.poison[bad] = poison
    report = await spawn(office_b).sync_once()
    assert (report.applied, report.refused, report.deferred) == (2, 1, 0)
    assert [m.msg_id for m in office_b.store.applied] == [from_a, from_c]
    assert [(m, s) for m, s, _ in office_b.store.refused] == [(bad, office_c.node_id)]
    assert hub.pending(office_b.node_id) == []
    assert office_b.store.state["last_error"] == ""


async def test_a_deferred_message_stays_and_holds_back_only_its_sender(
    hub: FakeHub, office_a: Office, office_b: Office, office_c: Office, spawn: Spawn
) -> None:
    """A transient failure leaves that message and its sender's later ones at the hub only."""
    waits = await _queue(hub, office_c, office_b)
    from_a = await _queue(hub, office_a, office_b)
    behind = await _queue(hub, office_c, office_b)
    office_b.store.poison[waits] = ApplyDeferred("not-enrolled")
    worker = spawn(office_b)
    report = await worker.sync_once()
    assert (report.applied, report.refused, report.deferred) == (1, 0, 2)
    assert [m.msg_id for m in office_b.store.applied] == [from_a]
    assert hub.pending(office_b.node_id) == [waits, behind]
    assert "left at the hub" in office_b.store.state["last_error"]
    # Once the node can apply it, both follow in the order C sent them.
    del office_b.store.poison[waits]
    report = await worker.sync_once()
    assert report.applied == 2
    assert [m.msg_id for m in office_b.store.applied] == [from_a, waits, behind]
    assert hub.pending(office_b.node_id) == []
    assert office_b.store.state["last_error"] == ""
