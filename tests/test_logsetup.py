"""Logging set-up: JSON lines off a terminal, and robust against a replaced stderr."""

from __future__ import annotations

import io
import json
import sys

import pytest
import structlog

from support.logsetup import configure_logging


def test_logs_are_json_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal every event is one JSON object with its name, level and fields."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("info")
    structlog.get_logger().info("relay.stored", msg_id="ab" * 16, size=1024)
    [line] = out.getvalue().splitlines()
    event = json.loads(line)
    assert (event["event"], event["level"], event["size"]) == ("relay.stored", "info", 1024)


def test_logging_follows_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """After stderr is swapped and the old stream closed, log calls go to the new one."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("info")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger().warning("probe.event", n=1)
    assert json.loads(second.getvalue())["event"] == "probe.event"


def test_unknown_level_is_refused() -> None:
    """A typo in the configured level is an error, not silently 'info'."""
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("chatty")
