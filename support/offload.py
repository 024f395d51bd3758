"""Decoding large bodies off the event loop, small ones inline.

Decoding and checking a network body is CPU work; for a body of a few
megabytes it takes longer than a request should hold the event loop (a
`/health` probe, the push channel and every other request wait meanwhile).
`decode_off_loop` runs such work in a worker thread (`asyncio.to_thread`)
when the body is larger than `INLINE_BYTES`, and inline when it is smaller,
where a thread hop would cost more than the work itself.

The work must be a pure function of its arguments (no event-loop objects):
it runs in another thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Below this many bytes a body is decoded on the loop (well under a millisecond).
INLINE_BYTES = 64 << 10


async def decode_off_loop(
    size: int, work: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """`work(*args, **kwargs)`, in a worker thread if `size` (the body's bytes) is large."""
    if size <= INLINE_BYTES:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)
