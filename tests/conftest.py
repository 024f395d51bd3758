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


def pytest_configure(config: pytest.Config) -> None:
    """Servers the tests start get ports no parallel worker can be handed meanwhile.

    `demo.processes.free_port()` frees its port at once (see tests/ports.py); test
    modules and `demo.cluster` import it by name, so both names are replaced before
    any test module is collected.
    """
    _PORTS.setattr(demo.processes, "free_port", reserved_port)
    _PORTS.setattr(demo.cluster, "free_port", reserved_port)
    # pytest-xdist registers this marker, but `-p no:xdist` must still collect.
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")


def pytest_unconfigure() -> None:
    _PORTS.undo()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the tests that share one of our module- or session-scoped fixtures on one worker.

    Those fixtures start real processes (the e2e cluster, the fuzzed live node, the
    attack's hub). xdist sets a fixture up once per worker that runs one of its
    tests; with `--dist loadgroup` (see addopts) each group below goes to a single
    worker, so the set-up is paid once, while all other tests are spread one by one.
    """
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        for defs in item._fixtureinfo.name2fixturedefs.values():
            fixture = defs[-1]
            if fixture.baseid.split("/")[0] != "tests":
                continue  # a plugin's fixture
            if fixture.scope == "session":
                group = fixture.baseid  # the directory of the conftest defining it
            elif fixture.scope in ("package", "module"):
                group = item.nodeid.split("::")[0]
            else:
                continue
            item.add_marker(pytest.mark.xdist_group(group))
            break


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
