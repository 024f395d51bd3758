"""The node database's one thread: in `mbe-node serve`, every query runs here.

SQLite calls block, and a commit in WAL mode with synchronous=FULL waits for
an fsync. On the event loop that would stall every other request, the push
socket and the sync worker for as long as the disk takes. So the server opens
the connection *on* this thread and sends all work to it (`run`); the loop
only awaits. The connection keeps sqlite3's `check_same_thread`, so any code
path that forgot to hop here fails loudly in tests instead of racing.

One thread, not a pool: SQLite has one writer anyway, and one thread means the
connection is never used concurrently, so a transaction needs no lock. The
command-line tools use the store directly on their own thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class DbThread:
    def __init__(self, name: str = "node-db") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` on the database thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the database thread from synchronous code (opening, closing)."""
        return self._pool.submit(fn, *args, **kwargs).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
