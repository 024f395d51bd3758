"""The start and stop of a background job's one asyncio task, and its periodic rounds."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog

from support.memory import release_free_memory

log = structlog.get_logger()


class BackgroundTask(abc.ABC):
    """Runs `_run()` as one named task from `start()` until `stop()` cancels it."""

    task_name = "mbe-node-job"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    def _run(self) -> Coroutine[Any, Any, None]:
        """The job's loop; runs until cancelled."""

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class PeriodicTask(BackgroundTask):
    """A job whose rounds run at start and then every `interval` seconds.

    A round that fails is logged as `failure_event` with the exception's type
    only (no data), and the next round tries again: the loop never ends on an
    error.
    """

    failure_event = "job.round_failed"

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval

    @abc.abstractmethod
    async def run_once(self) -> Any:
        """One round."""

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 -- background loop boundary: log the type, retry next round
                log.error(self.failure_event, error=type(exc).__name__)
            release_free_memory()
            await asyncio.sleep(self.interval)
