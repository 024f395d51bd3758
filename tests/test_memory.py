"""support/memory.py: freed heap goes back to the operating system where glibc runs."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from support import memory


def test_trim_is_found_where_glibc_runs_and_runs() -> None:
    assert (memory._trim() is not None) == (platform.libc_ver()[0] == "glibc")
    memory.release_free_memory()


def test_without_a_c_library_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    memory._trim.cache_clear()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    try:
        assert memory._trim() is None
        memory.release_free_memory()
    finally:
        memory._trim.cache_clear()
