"""The cache of indexed period data: one load for concurrent requests, failures not kept."""

from __future__ import annotations

import asyncio

import pytest

from hub.stats.aggregate import PeriodData
from hub.stats.periods import parse_period
from hub.stats.view import PeriodCache

KEY = ("2026-11", "organisations")


def _data() -> PeriodData:
    return PeriodData.from_reports(parse_period("2026-11"), {}, {})


async def test_concurrent_requests_share_one_load() -> None:
    """Five requests for the same uncached data while it loads cause one load."""
    cache, calls, gate = PeriodCache(), [], asyncio.Event()
    data = _data()

    async def load() -> PeriodData:
        calls.append(1)
        await gate.wait()
        return data

    tasks = [asyncio.create_task(cache.get_or_load(KEY, load)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert [await t for t in tasks] == [data] * 5
    assert len(calls) == 1
    assert await cache.get_or_load(KEY, load) is data
    assert len(calls) == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_kept() -> None:
    """A load that fails fails its waiters too; the next request loads again."""
    cache, gate = PeriodCache(), asyncio.Event()

    async def broken() -> PeriodData:
        await gate.wait()
        raise OSError("disk")

    tasks = [asyncio.create_task(cache.get_or_load(KEY, broken)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    for t in tasks:
        with pytest.raises(OSError, match="disk"):
            await t

    async def good() -> PeriodData:
        return _data()

    assert isinstance(await cache.get_or_load(KEY, good), PeriodData)


async def test_a_cancelled_loader_lets_a_waiter_load() -> None:
    """If the request that was loading goes away, a waiting request loads by itself."""
    cache, started = PeriodCache(), asyncio.Event()
    data = _data()

    async def slow() -> PeriodData:
        started.set()
        await asyncio.sleep(3600)
        return data

    async def fast() -> PeriodData:
        return data

    first = asyncio.create_task(cache.get_or_load(KEY, slow))
    await started.wait()
    second = asyncio.create_task(cache.get_or_load(KEY, fast))
    await asyncio.sleep(0)
    first.cancel()
    assert await second is data
    with pytest.raises(asyncio.CancelledError):
        await first
