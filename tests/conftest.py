"""Fixtures for the whole suite."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

import demo.cluster
import demo.processes
from node.api.contract_check import ENV as CONTRACT_CHECK
from tests import pg
from tests.hub.engines import ENGINES, SQLITE
from tests.ports import reserved_port

# Every node API the suite runs, in-process or as a `mbe-node serve` process,
# checks its responses against the spec and cross-checks its request validation
# with openapi-core (node/api/contract_check.py).
os.environ[CONTRACT_CHECK] = "1"

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
    config.addinivalue_line(
        "markers", "sqlite_only: a test of something only SQLite has; not run on PostgreSQL"
    )
    config.addinivalue_line(
        "markers",
        "one_engine: pages and exports over published numbers whose storage other tests"
        " check on both engines; run on SQLite only, to keep the suite fast",
    )


def pytest_unconfigure() -> None:
    _PORTS.undo()


# `-n auto` in addopts means this many workers for the suite or a directory: the
# tests wait on subprocesses and sockets much of the time, so twice the CI machine's
# 2 cores: as fast as 3 on a quiet machine, faster when it is shared (measured;
# figures in the commit message).
SUITE_WORKERS = 4


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """SUITE_WORKERS, or 0 (serial) when only test files or test ids are named:
    starting workers that each import everything costs more than one file saves."""
    named = [arg.split("::")[0] for arg in config.args]
    if named and all(arg.endswith(".py") for arg in named):
        return 0
    return SUITE_WORKERS


# Tests sharing one of our module- or session-scoped fixtures, which start real
# processes (the e2e cluster, the fuzzed live node, the attack's hub). xdist sets
# such a fixture up once per worker that runs one of its tests, so under
# `--dist loadgroup` (addopts) each of these goes to one worker as a whole; every
# other test is handed out on its own. A path ending in "/" is a directory.
SHARED_FIXTURE_GROUPS = ("tests/e2e/", "tests/fuzz/test_openapi.py", "tests/stats/test_attack.py")
# Files inside a group's directory whose tests start processes of their own and share
# no fixture with the group: handed out on their own, so they run beside it, not after it.
OWN_PROCESSES = (
    "tests/e2e/test_hub_cluster.py",
    "tests/e2e/test_hub_migration.py",
    "tests/e2e/test_hub_urls.py",
)

# Session-scoped fixtures meant to be set up once on every worker that needs them (each
# worker its own PostgreSQL cluster), so their tests are spread like any other test.
PER_WORKER_FIXTURES = frozenset({"pg_cluster"})


def shared_fixture_group(nodeid: str) -> str | None:
    """The group of SHARED_FIXTURE_GROUPS a test belongs to, without the trailing "/"."""
    if nodeid.startswith(OWN_PROCESSES):
        return None
    for prefix in SHARED_FIXTURE_GROUPS:
        if nodeid.startswith(prefix):
            return prefix.rstrip("/")
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup`, with the groups of SHARED_FIXTURE_GROUPS.

    xdist 3.8 passes a test's xdist_group to the scheduler by appending "@group"
    to its node id, which no longer takes effect with pytest 9.2's structured
    node ids (pytest-xdist issue 1386): every test would be scheduled on its own.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

    class SharedFixtureScheduling(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return shared_fixture_group(nodeid) or str(super()._split_scope(nodeid))

    return SharedFixtureScheduling(config, log)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Leave out the PostgreSQL copy of a test marked `sqlite_only` or `one_engine` (not
    skipped: there is nothing of it to run there). Mark each test that uses one of our
    module- or session-scoped fixtures with an xdist_group (for when xdist reads marks
    again), and warn if SHARED_FIXTURE_GROUPS does not list it: that costs a set-up per
    worker, not correctness."""
    items[:] = [item for item in items if not _postgres_copy_of_sqlite_only(item)]
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        for defs in item._fixtureinfo.name2fixturedefs.values():
            fixture = defs[-1]
            if fixture.baseid.split("/")[0] != "tests":
                continue  # a plugin's fixture
            if fixture.argname in PER_WORKER_FIXTURES:
                continue
            if fixture.scope == "session":
                group = fixture.baseid  # the directory of the conftest defining it
            elif fixture.scope in ("package", "module"):
                group = item.nodeid.split("::")[0]
            else:
                continue
            item.add_marker(pytest.mark.xdist_group(group))
            if shared_fixture_group(item.nodeid) != group:
                warnings.warn(
                    f"{item.nodeid} uses the {fixture.scope}-scoped fixture {fixture.argname}:"
                    f" add {group!r} to SHARED_FIXTURE_GROUPS in tests/conftest.py",
                    pytest.PytestWarning,
                    stacklevel=1,
                )
            break


def _postgres_copy_of_sqlite_only(item: pytest.Item) -> bool:
    if (
        item.get_closest_marker("sqlite_only") is None
        and item.get_closest_marker("one_engine") is None
    ):
        return False
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("engine", SQLITE) != SQLITE


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The hub's storage engine under test (tests/hub/engines.py): the tests of
    tests/hub and the storage tests of tests/stats run once on each."""
    return str(request.param)


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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """A throwaway PostgreSQL cluster (tests/pg.py), one per xdist worker.

    Fails, does not skip, where PostgreSQL is missing: `make test` installs it, and a
    skip would hide the tests that did not run. Stopped at the end of the session; if
    the worker dies first, the cluster's watchdog stops it.
    """
    reason = pg.available()
    if reason is not None:
        pytest.fail(f"pg_cluster: {reason}", pytrace=False)
    with pg.Cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: pg.Cluster) -> Iterator[str]:
    """The URL of a new, empty database in the worker's cluster, for this test alone;
    dropped (in the background, its connections closed) after the test."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)
