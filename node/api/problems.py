"""RFC 9457 problem responses, and safe descriptions of spec violations.

A detail names the offending field or parameter and the rule it broke, never
the value sent: request bodies carry personal data and problem texts end up in
app logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

PROBLEM_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
}


def problem(
    status: int, detail: str, *, kind: str | None = None, title: str | None = None
) -> web.Response:
    body: dict[str, Any] = {
        "type": f"urn:mbe-sync:problem:{kind or status}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="mbe-node"'} if status == 401 else None
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def _name(key: object) -> str:
    return str(key)[:40]


# How many violations one problem lists; the rest are counted.
MAX_LISTED = 5
# Formats the spec uses, said the way an app developer reads them.
_FORMATS = {"date": "a date (YYYY-MM-DD)", "date-time": "an RFC 3339 date-time"}


def _values(values: Any) -> str:
    """Allowed values of an enum: codes from the spec, never input."""
    shown = [str(v) for v in values if v is not None][:40]
    return ", ".join(shown)


def _types(limit: Any) -> str:
    """A schema's type(s) without the `null` a nullable field adds (null is said apart)."""
    if isinstance(limit, list):
        return " or ".join(str(t) for t in limit if t != "null")
    return str(limit)


def _rule(err: Any) -> str:
    """What the value must be, from the schema rule it broke (never the value)."""
    validator = getattr(err, "validator", "schema")
    limit = getattr(err, "validator_value", None)
    rules: dict[str, Callable[[], str]] = {
        "enum": lambda: f"must be one of: {_values(limit)}",
        "minimum": lambda: f"must be at least {limit}",
        "maximum": lambda: f"must be at most {limit}",
        "exclusiveMinimum": lambda: f"must be more than {limit}",
        "exclusiveMaximum": lambda: f"must be less than {limit}",
        "minLength": lambda: f"must be at least {limit} characters long",
        "maxLength": lambda: f"must be at most {limit} characters long",
        "minItems": lambda: f"must have at least {limit} items",
        "maxItems": lambda: f"must have at most {limit} items",
        "uniqueItems": lambda: "must not list an item twice",
        "pattern": lambda: f"must match the pattern {limit}",
        "format": lambda: f"must be {_FORMATS.get(str(limit), str(limit))}",
        "type": lambda: f"must be of type {_types(limit)}",
        "nullable": lambda: "must not be null",
        "minProperties": lambda: f"must have at least {limit} fields",
        "maxProperties": lambda: f"must have at most {limit} fields",
    }
    describe = rules.get(str(validator))
    return describe() if describe else f"does not satisfy the rule '{validator}'"


def _schema_error(err: Any, prefix: str) -> str:
    path = ".".join(_name(p) for p in getattr(err, "absolute_path", ()) or ())
    where = f"{prefix}.{path}" if path else prefix
    validator = getattr(err, "validator", "schema")
    instance = getattr(err, "instance", None)
    if validator == "required" and isinstance(instance, dict):
        missing = [_name(k) for k in err.validator_value if k not in instance]
        return f"{where}: missing field {', '.join(missing)}"
    if validator == "additionalProperties" and isinstance(instance, dict):
        known = set(err.schema.get("properties", {}))
        extra = sorted(_name(k) for k in instance if k not in known)
        return f"{where}: unknown field {', '.join(extra[:3])}"
    if instance is None and validator not in {"required", "nullable"}:
        return f"{where}: must not be null"
    return f"{where}: {_rule(err)}"


def schema_errors_detail(errors: Sequence[Any], prefix: str) -> str:
    """Every violation (up to MAX_LISTED), each with the rule it broke."""
    texts = list(dict.fromkeys(_schema_error(e, prefix) for e in errors))
    detail = "; ".join(texts[:MAX_LISTED])
    if len(texts) > MAX_LISTED:
        detail += f" (and {len(texts) - MAX_LISTED} more)"
    return detail
