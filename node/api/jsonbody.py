"""Refusing JSON bodies that parse but cannot be processed, before anything else reads them.

Two kinds pass `json.loads` (or crash it) and would end as a 500 further in:
nesting deep enough to exhaust the recursion limit of the parser or of the
schema validator (RecursionError), and strings holding a lone surrogate
(`"\\ud800"`), which Python accepts but UTF-8, and so SQLite, cannot store
(UnicodeEncodeError). No body of the API nests deeper than a few levels.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32


class BadJsonBody(ValueError):
    """The body is not JSON this API can process; the message is the problem detail."""


def check_json_body(raw: bytes) -> None:
    """Raise BadJsonBody for deep nesting or text that is not valid Unicode."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadJsonBody(f"the request body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        return  # not JSON at all: the spec check answers that with its own 400
    # Iterative, so checking cannot hit the recursion limit itself.
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise BadJsonBody(f"the request body is nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _text(key)
                stack.append((item, depth + 1))


def _text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadJsonBody("the request body holds a string that is not valid text") from None
