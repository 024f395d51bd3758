"""HubUrls: the order a request tries the hub's URLs in, stickiness, the drift back
to the first URL, and the checks of an administrator's list."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from node.sync.hub_urls import MAX_HUB_URLS, BadHubUrl, HubUrls, parse_hub_urls

A, B, C = "https://a.example.org", "https://b.example.org", "https://c.example.org"


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def urls(*items: str, current: str | None = None, ticks: Ticks | None = None) -> HubUrls:
    return HubUrls(items, current=current, prefer_first_after=300, monotonic=ticks or Ticks())


def test_a_request_starts_at_the_url_in_use_and_wraps_around_once() -> None:
    """From the current URL onwards, then the ones before it; each exactly once."""
    hub = urls(A, B, C)
    assert hub.attempts() == (A, B, C)
    hub.answered(B)
    assert hub.attempts() == (B, C, A)
    hub.answered(C)
    assert hub.attempts() == (C, A, B)


def test_the_url_that_answered_stays_in_use_and_is_logged_once() -> None:
    """Sticky: answered(B) makes B current; one info line per change, none per request."""
    hub = urls(A, B)
    with capture_logs() as logs:
        hub.answered(B, after=f"{A}: connection refused")
        hub.answered(B)
        hub.answered(B)
    assert hub.current == B
    changes = [e for e in logs if e["event"] == "hub.url_changed"]
    assert changes == [
        {
            "event": "hub.url_changed",
            "log_level": "info",
            "url": B,
            "previous": A,
            "reason": f"{A}: connection refused",
        }
    ]
    assert len(logs) == 1


def test_the_first_url_is_tried_first_again_after_a_while() -> None:
    """After PREFER_FIRST_AFTER on another URL the first leads; a failed try waits again."""
    ticks = Ticks()
    hub = urls(A, B, C, ticks=ticks)
    hub.answered(C)
    ticks.t += 299
    assert hub.attempts() == (C, A, B)
    ticks.t += 1
    assert hub.attempts() == (A, B, C)
    # The first is still down and B answers: B is in use; A leads again a period later.
    hub.failed(A)
    hub.answered(B)
    assert hub.current == B
    assert hub.attempts() == (B, C, A)
    ticks.t += 299
    assert hub.attempts()[0] == B
    ticks.t += 1
    assert hub.attempts()[0] == A
    hub.answered(A)
    assert (hub.current, hub.attempts()) == (A, (A, B, C))


def test_a_failed_try_of_the_first_url_postpones_the_next_one() -> None:
    """The first URL failing again while B is in use restarts the wait before it leads."""
    ticks = Ticks()
    hub = urls(A, B, ticks=ticks)
    hub.answered(B)
    ticks.t += 300
    hub.failed(A)
    assert hub.attempts() == (B, A)
    ticks.t += 300
    assert hub.attempts() == (A, B)


def test_a_hint_is_used_only_when_it_is_listed() -> None:
    """A new client starts at the URL the node used last, unless the list dropped it."""
    assert urls(A, B, current=B).current == B
    assert urls(A, B, current=C).current == A
    assert urls(A, B, current=None).current == A


def test_a_new_list_keeps_the_url_in_use_if_listed() -> None:
    """replace() keeps the current URL when it is still there, else starts at the first."""
    hub = urls(A, B)
    hub.answered(B)
    hub.replace((C, B))
    assert (hub.current, hub.urls) == (B, (C, B))
    hub.replace((A, C))
    assert hub.current == A
    with pytest.raises(ValueError, match="non-empty"):
        hub.replace(())


def test_an_answer_from_a_url_no_longer_listed_changes_nothing() -> None:
    """A request that ran while the list was replaced cannot make a dropped URL current."""
    hub = urls(A, B)
    hub.replace((B, C))
    hub.answered(A)
    assert hub.current == B


def test_the_administrators_list_is_normalised_and_checked() -> None:
    """Trailing slashes go; a repeat, an empty list, too many or a bad URL are refused."""
    assert parse_hub_urls([A + "/", " " + B]) == (A, B)
    with pytest.raises(BadHubUrl, match="given twice"):
        parse_hub_urls([A, A + "/"])
    with pytest.raises(BadHubUrl, match="at least one"):
        parse_hub_urls([])
    with pytest.raises(BadHubUrl, match=f"at most {MAX_HUB_URLS}"):
        parse_hub_urls([f"https://h{n}.example.org" for n in range(MAX_HUB_URLS + 1)])
    with pytest.raises(BadHubUrl, match="must look like"):
        parse_hub_urls([A, "ftp://b.example.org"])
