"""Refusing JSON bodies that parse but cannot be processed, before anything else reads them.

Two kinds pass `json.loads` (or crash it) and would end as a 500 further in:
nesting deep enough to exhaust the recursion limit of the parser or of the
schema validator (RecursionError), and strings holding a lone surrogate
(`"\\ud800"`), which Python accepts but UTF-8, and so SQLite, cannot store
(UnicodeEncodeError). No body of the API nests deeper than a few levels.

A third kind parses and would be processed wrongly: an object naming one key
twice (`{"consent": true, "consent": false}`), where `json.loads` keeps the last
value while another reader of the same bytes may keep the first. It is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32


class BadJsonBody(ValueError):
    """The body is not JSON this API can process; the message is the problem detail."""


class _RepeatedKey(Exception):  # not a ValueError: json.loads must not swallow it as bad JSON
    def __init__(self, key: str) -> None:
        self.key = key


# Keys of this API are field names; only such a key is echoed in the answer.
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RepeatedKey(key)
        out[key] = value
    return out


def check_json_body(raw: bytes) -> None:
    """Raise BadJsonBody for deep nesting, a repeated key or text that is not valid Unicode."""
    try:
        data = json.loads(raw, object_pairs_hook=_unique_pairs)
    except _RepeatedKey as exc:
        name = f" {exc.key!r}" if _FIELD_NAME.fullmatch(exc.key) else ""
        raise BadJsonBody(
            f"the request body names the key{name} twice in one object; send each key once"
        ) from None
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
