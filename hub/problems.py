"""RFC 9457 problem documents: the one shape of every refusal the hub sends."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web

from hub.errors import Problem
from protocol import errors as perr
from protocol.hub_api import (
    PROBLEM_CONTENT_TYPE,
    ProblemDocument,
    ProblemKind,
    encode_json,
    problem_type,
)

CONTENT_TYPE = PROBLEM_CONTENT_TYPE

# The problem kind of each protocol error. Each kind's wire value is the error's
# `code`, as the hub has always sent it; tests/hub/test_problems.py checks that
# every ProtocolError subclass has its own entry here.
#
# The last four cannot reach the HTTP boundary today: stale directories and
# enrollment codes and fingerprints are checked by the node, not the hub, and
# nothing raises the bare base class. They map to `malformed` (the hub would not
# call such an input anything else) rather than to kinds the hub never sends.
PROTOCOL_KINDS: Mapping[type[perr.ProtocolError], ProblemKind] = MappingProxyType(
    {
        perr.MalformedError: ProblemKind.MALFORMED,
        perr.InvalidCodeError: ProblemKind.INVALID_CODE,
        perr.TooLargeError: ProblemKind.TOO_LARGE,
        perr.UnsupportedVersionError: ProblemKind.UNSUPPORTED_VERSION,
        perr.UnknownTypeError: ProblemKind.UNKNOWN_TYPE,
        perr.BadSignatureError: ProblemKind.BAD_SIGNATURE,
        perr.WrongRecipientError: ProblemKind.WRONG_RECIPIENT,
        perr.ExpiredError: ProblemKind.EXPIRED,
        perr.ClockSkewError: ProblemKind.CLOCK_SKEW,
        perr.ReplayError: ProblemKind.REPLAYED_NONCE,
        perr.StaleError: ProblemKind.MALFORMED,
        perr.BadEnrollmentCodeError: ProblemKind.MALFORMED,
        perr.FingerprintMismatchError: ProblemKind.MALFORMED,
        perr.ProtocolError: ProblemKind.MALFORMED,
    }
)

# Status codes of protocol errors when they reach the HTTP boundary (400 otherwise).
_PROTOCOL_STATUS: Mapping[ProblemKind, int] = MappingProxyType(
    {ProblemKind.TOO_LARGE: 413, ProblemKind.UNSUPPORTED_VERSION: 400}
)

# aiohttp's own refusals by status (`http-error` otherwise).
_HTTP_KINDS: Mapping[int, ProblemKind] = MappingProxyType(
    {404: ProblemKind.NOT_FOUND, 405: ProblemKind.METHOD_NOT_ALLOWED, 413: ProblemKind.TOO_LARGE}
)


def protocol_kind(exc: perr.ProtocolError) -> ProblemKind:
    """The problem kind of a protocol error: that of its class or, failing that, the
    nearest base class with an entry (ProtocolError itself has one)."""
    for cls in type(exc).__mro__:
        kind = PROTOCOL_KINDS.get(cls)
        if kind is not None:
            return kind
    raise AssertionError("unreachable: ProtocolError has an entry")  # pragma: no cover


def from_protocol(exc: perr.ProtocolError, what: str) -> Problem:
    kind = protocol_kind(exc)
    return Problem(kind, _PROTOCOL_STATUS.get(kind, 400), f"{what}: {exc}")


def response(problem: Problem) -> web.Response:
    body = ProblemDocument(
        type=problem_type(problem.kind),
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
    )
    headers = {} if problem.retry_after is None else {"Retry-After": str(problem.retry_after)}
    return web.Response(
        status=problem.status, body=encode_json(body), content_type=CONTENT_TYPE, headers=headers
    )


def from_http(exc: web.HTTPException) -> Problem:
    """aiohttp's own refusals (404, 405, 413, ...) as problems."""
    kind = _HTTP_KINDS.get(exc.status, ProblemKind.HTTP_ERROR)
    return Problem(kind, exc.status, exc.reason or kind, title=exc.reason)
