"""Problem kinds are ProblemKind members everywhere in hub/ (issue 12, item 4), and the
wire (type URI, status) the hub sends is what it always was."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import MappingProxyType

import pytest
from aiohttp import web

from hub.errors import Problem
from hub.problems import PROTOCOL_KINDS, from_http, from_protocol, protocol_kind, response
from protocol import errors as perr
from protocol.hub_api import ProblemKind

HUB = Path(__file__).resolve().parents[2] / "hub"
BASE = "https://mbe-sync.invalid/problems/"

# Protocol errors that cannot reach the hub's HTTP boundary (the node checks
# directories, enrollment codes and fingerprints; nothing raises the bare base):
# they map to `malformed` instead of to a kind the hub never sends.
NODE_SIDE_ONLY = {
    perr.ProtocolError,
    perr.StaleError,
    perr.BadEnrollmentCodeError,
    perr.FingerprintMismatchError,
}


def _subclasses(cls: type[perr.ProtocolError]) -> set[type[perr.ProtocolError]]:
    out: set[type[perr.ProtocolError]] = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def _protocol_errors() -> list[type[perr.ProtocolError]]:
    # Only the protocol's own classes: a test elsewhere may define a subclass.
    found = _subclasses(perr.ProtocolError) | {perr.ProtocolError}
    return sorted((c for c in found if c.__module__ == perr.__name__), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _protocol_errors(), ids=lambda c: c.__name__)
def test_every_protocol_error_has_a_problem_kind(cls: type[perr.ProtocolError]) -> None:
    """Each class has its own entry (not only its parent's), and the kind's wire value
    is the error's code, as the hub sent it before the mapping was explicit."""
    assert isinstance(PROTOCOL_KINDS.get(cls), ProblemKind), f"{cls.__name__} has no entry"
    kind = protocol_kind(cls("x"))
    if cls in NODE_SIDE_ONLY:
        assert kind is ProblemKind.MALFORMED
    else:
        assert kind.value == cls.code


def test_the_mappings_are_read_only() -> None:
    assert isinstance(PROTOCOL_KINDS, MappingProxyType)
    with pytest.raises(TypeError):
        PROTOCOL_KINDS[perr.MalformedError] = ProblemKind.INTERNAL  # type: ignore[index]


def test_an_unlisted_subclass_takes_its_parents_kind() -> None:
    class Odd(perr.TooLargeError):
        code = "odd"

    problem = from_protocol(Odd("too big"), "upload")
    assert (problem.kind, problem.status) == (ProblemKind.TOO_LARGE, 413)


def test_no_problem_kind_is_a_string_literal_in_hub() -> None:
    """`Problem("malformed", ...)` is gone: every kind is written as ProblemKind.X."""
    literal = re.compile(r"\b(?:Problem|_Refuse)\(\s*[rbuf]*[\"']")
    found = []
    for f in sorted(HUB.rglob("*.py")):
        text = f.read_text("utf-8")
        for m in literal.finditer(text):
            found.append(f"{f.relative_to(HUB.parent)}:{text.count(chr(10), 0, m.start()) + 1}")
    assert found == []
    # The scan does see the hub's problems (so an empty result means something).
    assert "Problem(ProblemKind." in (HUB / "auth.py").read_text("utf-8")


def _wire(problem: Problem) -> tuple[int, str, str]:
    resp = response(problem)
    assert resp.content_type == "application/problem+json"
    assert isinstance(resp.body, bytes)
    doc = json.loads(resp.body)
    assert doc["status"] == resp.status
    return resp.status, doc["type"], doc["detail"]


@pytest.mark.parametrize(
    ("exc", "status", "kind"),
    [
        (perr.TooLargeError("envelope is too large"), 413, "too-large"),
        (perr.UnsupportedVersionError("version 9"), 400, "unsupported-version"),
        (perr.MalformedError("bad field"), 400, "malformed"),
        (perr.InvalidCodeError("not in the list"), 400, "invalid-code"),
        (perr.BadSignatureError("does not verify"), 400, "bad-signature"),
        (perr.WrongRecipientError("someone else"), 400, "wrong-recipient"),
        (perr.ExpiredError("gone"), 400, "expired"),
        (perr.UnknownTypeError("what"), 400, "unknown-type"),
        (perr.ClockSkewError("late"), 400, "clock-skew"),
        (perr.ReplayError("again"), 400, "replayed-nonce"),
    ],
)
def test_protocol_errors_keep_their_wire_type_and_status(
    exc: perr.ProtocolError, status: int, kind: str
) -> None:
    assert _wire(from_protocol(exc, "stats")) == (status, BASE + kind, f"stats: {exc}")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (web.HTTPNotFound(), "not-found"),
        (web.HTTPMethodNotAllowed("PUT", ["GET"]), "method-not-allowed"),
        (web.HTTPRequestEntityTooLarge(max_size=1, actual_size=2), "too-large"),
        (web.HTTPGone(), "http-error"),
    ],
)
def test_aiohttp_refusals_keep_their_wire_type(exc: web.HTTPException, kind: str) -> None:
    status, type_uri, _ = _wire(from_http(exc))
    assert (status, type_uri) == (exc.status, BASE + kind)


def test_every_kind_is_in_the_docs_table_once() -> None:
    """docs/hub-api.md lists each ProblemKind with its status, and nothing else."""
    text = (HUB.parent / "docs" / "hub-api.md").read_text("utf-8")
    rows = re.findall(r"^\| `([a-z-]+)` \|", text, re.M)
    assert sorted(rows) == sorted(k.value for k in ProblemKind)
