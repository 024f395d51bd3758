"""The start and stop of a background job's one asyncio task."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


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
