"""Logging configuration shared by the `mbe-node` and `mbe-hub` entry points.

Called once, from the CLI, before anything logs. Modules only call
`structlog.get_logger()`. On a terminal the output is readable console lines;
otherwise (systemd journal, files, CI) it is JSON lines, one event a line.

This lives in `support/`, not `protocol/`, because it configures process-wide
output and `protocol/` stays free of I/O. Log events carry names and ids, never
personal data or message contents (see docs/privacy.md).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing.

    Binding the stream object at configuration time breaks when stderr is
    replaced later (test capture, a daemon redirecting it): log calls would
    then write to a closed file.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    # A duck-typed stream: structlog and logging only call write, flush and isatty.
    out = stream if stream is not None else cast(TextIO, _CurrentStderr())
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    renderer: structlog.typing.Processor
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # aiohttp's access log goes through stdlib logging; keep it at warning so
    # request paths (which may carry ids) do not flood the journal.
    logging.basicConfig(
        level=max(numeric, logging.WARNING),
        stream=out,
        format="%(message)s",
    )
