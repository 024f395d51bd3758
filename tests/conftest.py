"""Fixtures for the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

import demo.cluster
import demo.processes
from tests.ports import reserved_port

_PORTS = pytest.MonkeyPatch()


def pytest_configure() -> None:
    """Servers the tests start get ports no parallel worker can be handed meanwhile.

    `demo.processes.free_port()` frees its port at once (see tests/ports.py); test
    modules and `demo.cluster` import it by name, so both names are replaced before
    any test module is collected.
    """
    _PORTS.setattr(demo.processes, "free_port", reserved_port)
    _PORTS.setattr(demo.cluster, "free_port", reserved_port)


def pytest_unconfigure() -> None:
    _PORTS.undo()


@pytest.fixture(autouse=True)
def _isolated_logging_config() -> Iterator[None]:
    """Undo logging set-up a test caused, e.g. by calling a CLI's main() in-process.

    `mbe-hub`'s commands configure structlog at level warning; left in place, a
    later test's `capture_logs()` would see no info events.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level
