"""Stopping a background task at shutdown without waiting for ever.

A server's background loops (maintenance, probes, listeners) are cancelled when
it stops. A task whose current await ignores or swallows the cancellation (a
driver call that turns it into its own error and retries) would hold the
shutdown, and so a restart, indefinitely: `stop` waits a bounded time, logs
the task that did not end, and returns.
"""

from __future__ import annotations

import asyncio

import structlog

STOP_TIMEOUT = 5.0
log = structlog.get_logger()


async def stop(task: asyncio.Task[None], timeout: float = STOP_TIMEOUT) -> None:
    """Cancel `task` and wait for it, at most `timeout` seconds."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        log.warning("task.stop_timeout", task=task.get_name())
        return
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("task.failed", task=task.get_name(), error=type(exc).__name__)
