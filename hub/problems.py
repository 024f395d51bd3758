"""RFC 9457 problem documents: the one shape of every refusal the hub sends."""

from __future__ import annotations

import json

from aiohttp import web

from hub.errors import Problem
from protocol.errors import ProtocolError

PROBLEM_BASE = "https://mbe-sync.invalid/problems/"
CONTENT_TYPE = "application/problem+json"

# Status codes of protocol errors when they reach the HTTP boundary.
_PROTOCOL_STATUS = {"too-large": 413, "unsupported-version": 400}


def type_uri(kind: str) -> str:
    return PROBLEM_BASE + kind


def from_protocol(exc: ProtocolError, what: str) -> Problem:
    return Problem(exc.code, _PROTOCOL_STATUS.get(exc.code, 400), f"{what}: {exc}")


def response(problem: Problem) -> web.Response:
    body = {
        "type": type_uri(problem.kind),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    return web.Response(
        status=problem.status,
        body=json.dumps(body).encode(),
        content_type=CONTENT_TYPE,
    )


def from_http(exc: web.HTTPException) -> Problem:
    """aiohttp's own refusals (404, 405, 413, ...) as problems."""
    kinds = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}
    kind = kinds.get(exc.status, "http-error")
    return Problem(kind, exc.status, exc.reason or kind, title=exc.reason)
