"""`support.tasks.stop`: a background task that will not end does not hold the shutdown."""

from __future__ import annotations

import asyncio
import contextlib

from structlog.testing import capture_logs

from support.tasks import stop


async def test_a_task_that_ends_on_cancel_is_stopped_quietly() -> None:
    task = asyncio.create_task(asyncio.sleep(60), name="sleeper")
    with capture_logs() as logs:
        await stop(task, timeout=1.0)
    assert task.cancelled()
    assert logs == []


async def test_a_task_that_swallows_its_cancellation_is_left_after_the_timeout() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with capture_logs() as logs:
        await stop(task, timeout=0.2)
    assert loop.time() - started < 2.0
    assert not task.done()
    assert {"event": "task.stop_timeout", "task": "stubborn", "log_level": "warning"} in logs
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
    assert task.done()


async def test_a_task_that_failed_is_logged_with_its_error_type() -> None:
    async def failing() -> None:
        raise ValueError("stored data must not reach the log")

    task = asyncio.create_task(failing(), name="failing")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await stop(task, timeout=1.0)
    assert logs == [
        {"event": "task.failed", "task": "failing", "error": "ValueError", "log_level": "warning"}
    ]
