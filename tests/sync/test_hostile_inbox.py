"""A hostile hub's inbox page is refused quickly, without a memory blow-up (issue 10).

The hub (fake, `inbox_body`) answers an inbox fetch with a page built to be
cheap to send and expensive to decode: 15 MiB of one-byte msgpack maps, far
more entries than the node asked for, or more bytes than any page may have.
The node's client must refuse each as a broken answer (`HubResponseError`)
with bounded memory (tracemalloc, generous bounds: the body itself is held
once or twice while it is read) and without stalling its event loop.
Timings belong in bench/; the bounds here are loose enough for a loaded
2-core machine.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest

from node.sync.client import HubClient
from node.sync.errors import HubResponseError
from node.sync.worker import SyncWorker
from protocol import hub_api
from protocol.encoding import pack
from tests.sync.fakehub import FakeHub
from tests.sync.helpers import Office, fast_settings

MIB = 1 << 20
BODY = 15 * MIB
# Peak Python memory while fetching, decoding and refusing: the 15 MiB body is
# held by the fake hub and read by the client (a few copies); decoding it
# today costs over a gigabyte.
MAX_GROWTH = 6 * BODY
# The longest the node's event loop may be held while the page is refused.
MAX_STALL = 0.5


def one_byte_maps(size: int) -> bytes:
    """`{"messages": [[{}, {}, ...], ...], "next": 0, "more": false}` of about `size` bytes.

    Every array has 1000 empty maps (0x80, one byte each), under any per-array
    limit msgpack is given; only a budget over the whole object stops it.
    """
    inner = b"\xdc" + (1000).to_bytes(2, "big") + b"\x80" * 1000
    n = size // len(inner)
    head = b"\x83" + pack("messages") + b"\xdd" + n.to_bytes(4, "big")
    return head + inner * n + pack("next") + b"\x00" + pack("more") + b"\xc2"


def many_entries(n: int) -> bytes:
    """A well-formed page of `n` empty messages: far more than the node asked for."""
    entry = {"seq": 1, "id": "ab" * 16, "envelope": b""}
    return pack({"messages": [entry] * n, "next": 1, "more": False})


def client_for(office: Office, url: str) -> HubClient:
    return HubClient(url, keys=office.keys, node_id=office.node_id, request_timeout=30.0)


async def measured(work: Callable[[], Awaitable[object]]) -> tuple[BaseException, int, float]:
    """Run `work`, expecting it to fail: (the exception, peak memory growth, longest loop stall)."""
    stalls: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            await asyncio.sleep(0.01)
            stalls.append(loop.time() - started - 0.01)

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.05)
        try:
            await work()
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller to check
            failure = exc
        else:
            pytest.fail("the hostile page was accepted")
        finally:
            stop.set()
            await prober
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return failure, peak, max(stalls, default=0.0)


async def test_one_byte_maps_are_refused_without_blowing_up(
    hub: FakeHub, hub_url: str, office_b: Office
) -> None:
    """15 MiB of empty maps (under the byte cap of a 100-message page) is refused
    as too many elements, long before it becomes millions of Python objects."""
    hub.inbox_body = one_byte_maps(BODY)
    assert len(hub.inbox_body) <= hub_api.inbox_page_limits(100).max_bytes

    async def fetch() -> None:
        async with client_for(office_b, hub_url) as c:
            await c.fetch_inbox(0, 100)

    failure, peak, stall = await measured(fetch)
    assert isinstance(failure, HubResponseError)
    assert "elements" in str(failure)
    assert peak < MAX_GROWTH, f"peak memory grew by {peak // MIB} MiB"
    assert stall < MAX_STALL, f"the event loop stalled for {stall:.2f} s"


async def test_more_entries_than_asked_for_are_refused(
    hub: FakeHub, hub_url: str, office_b: Office
) -> None:
    """A page of 50 000 entries for `limit=10` is refused, however small each entry."""
    hub.inbox_body = many_entries(50_000)
    async with client_for(office_b, hub_url) as c:
        with pytest.raises(HubResponseError, match="elements"):
            await c.fetch_inbox(0, 10)


async def test_a_page_larger_than_any_page_may_be_is_refused_unread(
    hub: FakeHub, hub_url: str, office_b: Office
) -> None:
    """A page over the byte bound of its limit (here 20 MiB for 100 messages; a hub
    sends at most MAX_INBOX_BYTES of envelopes) is refused by its Content-Length."""
    big = pack({"messages": [{"seq": 1, "id": "ab" * 16, "envelope": b"\x00" * (20 * MIB)}]})
    assert len(big) > hub_api.inbox_page_limits(100).max_bytes
    hub.inbox_body = big
    async with client_for(office_b, hub_url) as c:
        with pytest.raises(HubResponseError, match="answer larger than"):
            await c.fetch_inbox(0, 100)


async def test_a_sync_cycle_against_the_hostile_hub_fails_and_says_why(
    hub: FakeHub, office_b: Office
) -> None:
    """The worker's cycle fails as on any broken answer; nothing of the page is applied."""
    hub.inbox_body = one_byte_maps(BODY)
    worker = SyncWorker(fast_settings(), office_b.store, office_b.keys)

    failure, peak, _ = await measured(worker.sync_once)
    assert isinstance(failure, HubResponseError)
    assert peak < MAX_GROWTH, f"peak memory grew by {peak // MIB} MiB"
    assert office_b.store.applied == []
    assert office_b.store.refused == []
