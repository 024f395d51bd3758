"""RFC 9457 problem documents: the one shape of every refusal the hub sends."""

from __future__ import annotations

from aiohttp import web

from hub.errors import Problem
from protocol.errors import ProtocolError
from protocol.hub_api import (
    PROBLEM_BASE,
    PROBLEM_CONTENT_TYPE,
    ProblemDocument,
    encode_json,
)

CONTENT_TYPE = PROBLEM_CONTENT_TYPE

# Status codes of protocol errors when they reach the HTTP boundary.
_PROTOCOL_STATUS = {"too-large": 413, "unsupported-version": 400}


def type_uri(kind: str) -> str:
    return PROBLEM_BASE + kind


def from_protocol(exc: ProtocolError, what: str) -> Problem:
    return Problem(exc.code, _PROTOCOL_STATUS.get(exc.code, 400), f"{what}: {exc}")


def response(problem: Problem) -> web.Response:
    body = ProblemDocument(
        type=type_uri(problem.kind),
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
    )
    return web.Response(status=problem.status, body=encode_json(body), content_type=CONTENT_TYPE)


def from_http(exc: web.HTTPException) -> Problem:
    """aiohttp's own refusals (404, 405, 413, ...) as problems."""
    kinds = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}
    kind = kinds.get(exc.status, "http-error")
    return Problem(kind, exc.status, exc.reason or kind, title=exc.reason)
