"""Fixtures for the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


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
