"""Giving freed heap memory back to the operating system (glibc's malloc_trim).

A long-running node frees most of what start-up and a burst of work allocated
(the parsed API spec, a sync cycle's pages), but glibc keeps freed memory in
its heap for reuse, so the process's resident size stays at its peak. Calling
`malloc_trim(0)` after start-up and after each round of a periodic job returns
the free pages: an idle node then holds what it uses (issue 11 measured ~1 MiB
at start-up). Elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> None:
    """Return free heap pages to the operating system, where the C library can."""
    trim = _trim()
    if trim is not None:
        trim(0)
