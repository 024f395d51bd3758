"""bench.relay's options: the engine, the PostgreSQL URL and --quick for both engines."""

from __future__ import annotations

import pytest

from bench.relay import DEFAULT_SIZES, POSTGRESQL, QUICK_SIZES, SQLITE, notable, parse_args


def test_defaults_are_sqlite_at_the_issue_sizes() -> None:
    opts = parse_args([])
    assert (opts.engine, opts.database_url, opts.sizes) == (SQLITE, None, list(DEFAULT_SIZES))
    assert (opts.nodes, opts.batch, opts.random_ids, opts.hub_log) == (8, 100, False, None)


@pytest.mark.parametrize("engine", [SQLITE, POSTGRESQL])
def test_quick_works_for_both_engines(engine: str) -> None:
    opts = parse_args(["--quick", "--engine", engine])
    assert (opts.engine, opts.sizes) == (engine, list(QUICK_SIZES))


def test_postgresql_without_a_url_means_a_throwaway_cluster() -> None:
    opts = parse_args(["--engine", "postgresql", "--sizes", "20000"])
    assert (opts.engine, opts.database_url, opts.sizes) == (POSTGRESQL, None, [20000])


def test_a_database_url_implies_postgresql() -> None:
    url = "postgresql://bench@db.example:5432/relay"
    opts = parse_args(["--database-url", url])
    assert (opts.engine, opts.database_url) == (POSTGRESQL, url)


@pytest.mark.parametrize(
    "argv",
    [
        ["--engine", "sqlite", "--database-url", "postgresql://bench@127.0.0.1/relay"],
        ["--database-url", "sqlite:///tmp/hub.db"],
        ["--engine", "mysql"],
        ["--sizes", "0"],
        ["--batch", "0"],
        ["--nodes", "0"],
    ],
)
def test_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"event": "hub.listening", "level": "info", "port": 1}', False),
        ('{"event": "storage.unavailable", "level": "warning"}', True),
        ('{"event": "http.internal_error", "level": "error"}', True),
        ("Traceback (most recent call last):", True),
        ("", False),
    ],
)
def test_notable_hub_log_lines(line: str, expected: bool) -> None:
    assert notable(line) is expected
