"""Request signing: tampering, clock skew and replays are refused."""

from __future__ import annotations

import pytest

from protocol.errors import BadSignatureError, ClockSkewError, MalformedError, ReplayError
from protocol.requests import (
    DEFAULT_MAX_SKEW,
    HEADER_TIMESTAMP,
    NonceCache,
    parse_request_headers,
    sign_request,
    verify_request,
)
from tests.protocol import factories as f

ALICE = f.keys("office-a")
BODY = b'{"hello": 1}'
NONCE = f.hex_id("nonce")


def headers(timestamp: int = f.NOW) -> dict[str, str]:
    return sign_request(
        "POST",
        "/v1/messages",
        BODY,
        node_id="office-a",
        keys=ALICE,
        timestamp=timestamp,
        nonce=NONCE,
    )


def verify(
    method: str = "POST",
    path: str = "/v1/messages",
    body: bytes = BODY,
    hdrs: dict[str, str] | None = None,
    now: int = f.NOW,
) -> None:
    signed = parse_request_headers(hdrs if hdrs is not None else headers())
    verify_request(method, path, body, signed, ALICE.public, now=now)


def test_a_signed_request_verifies() -> None:
    """The baseline: the untouched request verifies; the method's case does not matter."""
    verify()
    verify(method="post")


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("body", {"body": b'{"hello": 2}'}),
        ("path", {"path": "/v1/messages?all=1"}),
        ("method", {"method": "PUT"}),
    ],
)
def test_tampered_request_is_refused(what: str, change: dict[str, object]) -> None:
    """A changed body, path or method no longer matches the signature."""
    with pytest.raises(BadSignatureError):
        verify(**change)  # type: ignore[arg-type]  # parametrized keyword of a known type


def test_tampered_timestamp_is_refused() -> None:
    """A timestamp changed within the skew window no longer matches the signature."""
    hdrs = headers()
    hdrs[HEADER_TIMESTAMP] = str(f.NOW + 1)
    with pytest.raises(BadSignatureError):
        verify(hdrs=hdrs)


def test_another_nodes_key_does_not_verify() -> None:
    """A request signed by office-a does not verify with office-b's key."""
    signed = parse_request_headers(headers())
    with pytest.raises(BadSignatureError):
        verify_request("POST", "/v1/messages", BODY, signed, f.keys("office-b").public, now=f.NOW)


@pytest.mark.parametrize("offset", [DEFAULT_MAX_SKEW + 1, -(DEFAULT_MAX_SKEW + 1), 10**6])
def test_clock_skew_beyond_the_bound_is_refused(offset: int) -> None:
    """A request from too far in the past or the future is refused, whatever its signature."""
    with pytest.raises(ClockSkewError, match="NTP"):
        verify(hdrs=headers(timestamp=f.NOW + offset))


@pytest.mark.parametrize("offset", [DEFAULT_MAX_SKEW, -DEFAULT_MAX_SKEW])
def test_clock_skew_at_the_bound_is_accepted(offset: int) -> None:
    """A request exactly at the skew bound, in either direction, is accepted."""
    verify(hdrs=headers(timestamp=f.NOW + offset))


def test_nonce_cache_detects_a_replay() -> None:
    """The same node and nonce twice is a replay; another node may use the same nonce."""
    cache = NonceCache()
    cache.check_and_remember("office-a", NONCE, f.NOW, f.NOW)
    with pytest.raises(ReplayError):
        cache.check_and_remember("office-a", NONCE, f.NOW, f.NOW + 10)
    cache.check_and_remember("office-b", NONCE, f.NOW, f.NOW + 10)
    assert len(cache) == 2


def test_nonce_cache_forgets_after_the_window() -> None:
    """After twice the skew a nonce is forgotten (the clock check refuses such a request)."""
    cache = NonceCache(max_skew=60)
    cache.check_and_remember("office-a", NONCE, f.NOW, f.NOW)
    with pytest.raises(ReplayError):
        cache.check_and_remember("office-a", NONCE, f.NOW, f.NOW + 120)
    other = f.hex_id("other")
    cache.check_and_remember("office-a", other, f.NOW + 121, f.NOW + 121)
    assert len(cache) == 1  # the first nonce was pruned
    cache.check_and_remember("office-a", NONCE, f.NOW + 121, f.NOW + 121)
    assert len(cache) == 2


@pytest.mark.parametrize("ts", ["", "-5", "12.5", "1" * 13, "²", "١٢٣", "１２３"])
def test_malformed_timestamp_header_is_refused(ts: str) -> None:
    """Only 1 to 12 ASCII digits are a timestamp; Unicode digits are refused (regression)."""
    hdrs = headers()
    hdrs[HEADER_TIMESTAMP] = ts
    with pytest.raises(MalformedError):
        parse_request_headers(hdrs)


def test_missing_headers_are_refused() -> None:
    """Each of the four headers is required."""
    for name in headers():
        hdrs = headers()
        del hdrs[name]
        with pytest.raises(MalformedError, match=name):
            parse_request_headers(hdrs)


def test_sign_request_refuses_a_malformed_nonce() -> None:
    """The nonce must be 32 lowercase hex characters."""
    with pytest.raises(MalformedError):
        sign_request("GET", "/", b"", node_id="office-a", keys=ALICE, timestamp=1, nonce="abc")
