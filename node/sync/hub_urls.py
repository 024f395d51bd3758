"""The hub's URLs: which one to ask, which next, and when to go back to the first.

A hub may run as several `mbe-hub serve` processes on one database, behind a
reverse proxy or on several hosts. They share the hub's keys and state, so to
a node they are one hub with several addresses. The site administrator lists
them in order of preference (`mbe-node enroll --hub A --hub B`, later
`mbe-node hub-urls A B`); the list is kept with the enrollment.

`HubUrls` is the bookkeeping of one `HubClient`, without I/O:

* `current` is the URL that answered last. A request starts there (sticky), so
  a dead first URL costs one timeout when it dies, not one per request.
* `attempts()` is the order for one request: `current`, then the URLs after
  it in the list, wrapping around once. The client moves on only when a URL
  gave no answer (connection refused or reset, timeout, DNS failure, or a
  proxy's 502/503/504); any other answer is the hub's and is not asked again
  elsewhere (docs/node.md, "Several hub URLs").
* After `PREFER_FIRST_AFTER` seconds on another URL the first one is tried
  first again (and after each failed try, another period later), so nodes
  drift back to the hub the administrator prefers once it is back.

Each change of `current` is logged once (`hub.url_changed`, info); a request
is never logged. URLs are not personal data.

Rejected alternatives: round robin (every dead URL would cost a timeout in
turn, and spreading one node's few requests gains nothing); probing the URLs
in the background (requests on a timer for nothing while all is well); asking
all URLs at once and taking the first answer (every upload sent twice).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

import structlog
from yarl import URL

from node.sync.errors import SyncError
from node.sync.ports import EnrollmentState

log = structlog.get_logger()

# Seconds on a fallback URL before the first one is tried first again.
PREFER_FIRST_AFTER = 300.0
# Every URL may cost a request timeout before the next is tried: a long list
# would make one request wait for minutes.
MAX_HUB_URLS = 8


class BadHubUrl(SyncError):
    """A hub URL given by the administrator is not usable."""


def normalize_hub_url(url: str) -> str:
    """`http(s)://host[:port]` without a trailing slash; the hub is served at the root."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # parsed lazily: raises for "[::1" or a port beyond 65535
        URL(url.strip())  # what aiohttp will parse; refuse now rather than later
    except ValueError as exc:
        raise BadHubUrl(f"hub URL {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadHubUrl(f"hub URL must look like https://hub.example.org, not {url!r}")
    if any(c.isspace() or not c.isprintable() for c in url.strip()):
        raise BadHubUrl(f"hub URL {url!r} must not contain spaces or control characters")
    if port == 0:
        raise BadHubUrl(f"hub URL {url!r}: the port must be between 1 and 65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BadHubUrl(
            f"hub URL must not have a path or query (the hub runs at the root): {url!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def parse_hub_urls(texts: Iterable[str]) -> tuple[str, ...]:
    """The administrator's URLs, normalised and in order; BadHubUrl for a bad one,
    a repeated one, none at all or more than MAX_HUB_URLS."""
    urls: list[str] = []
    for text in texts:
        url = normalize_hub_url(text)
        if url in urls:
            raise BadHubUrl(f"hub URL {url} is given twice")
        urls.append(url)
    if not urls:
        raise BadHubUrl("give at least one hub URL, e.g. https://hub.example.org")
    if len(urls) > MAX_HUB_URLS:
        raise BadHubUrl(f"at most {MAX_HUB_URLS} hub URLs, not {len(urls)}")
    return tuple(urls)


class HubUrls:
    """The hub's URLs in the administrator's order, and the one in use (see above)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        current: str | None = None,
        prefer_first_after: float = PREFER_FIRST_AFTER,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls or len(set(urls)) != len(urls):
            raise ValueError("hub URLs must be a non-empty list without repeats")
        if not prefer_first_after > 0:
            raise ValueError("prefer_first_after must be > 0")
        self._urls = tuple(urls)
        self._prefer_first_after = prefer_first_after
        self._monotonic = monotonic
        # `current` is a hint (the URL a running node used last, from the store):
        # honoured when it is still in the list.
        self._index = self._urls.index(current) if current in self._urls else 0
        # When the first URL was last left or last failed.
        self._away_since = monotonic()

    @classmethod
    def of(cls, state: EnrollmentState, prefer_first_after: float = PREFER_FIRST_AFTER) -> HubUrls:
        """The URLs of an enrollment, starting at the one the node used last."""
        return cls(state.hub_urls, current=state.hub_in_use, prefer_first_after=prefer_first_after)

    @property
    def urls(self) -> tuple[str, ...]:
        return self._urls

    @property
    def current(self) -> str:
        return self._urls[self._index]

    def attempts(self) -> tuple[str, ...]:
        """The URLs to try for one request, in order; each once."""
        start = self._index
        if start and self._monotonic() - self._away_since >= self._prefer_first_after:
            start = 0
        n = len(self._urls)
        return tuple(self._urls[(start + i) % n] for i in range(n))

    def answered(self, url: str, *, after: str = "") -> None:
        """`url` answered: it is the one in use. `after`: why the one before did not."""
        if url not in self._urls:
            return  # the list was replaced while the request ran
        index = self._urls.index(url)
        if index == self._index:
            return
        previous, self._index = self.current, index
        if index:
            self._away_since = self._monotonic()
        log.info("hub.url_changed", url=url, previous=previous, reason=after or None)

    def failed(self, url: str) -> None:
        """`url` gave no answer; a failed first URL is tried first again a period later."""
        if self._urls and url == self._urls[0] and self._index:
            self._away_since = self._monotonic()

    def replace(self, urls: Sequence[str]) -> None:
        """A new list (`mbe-node hub-urls`); the URL in use stays if it is still listed."""
        if not urls or len(set(urls)) != len(urls):
            raise ValueError("hub URLs must be a non-empty list without repeats")
        previous = self.current
        self._urls = tuple(urls)
        self._index = self._urls.index(previous) if previous in self._urls else 0
        self._away_since = self._monotonic()
        log.info("hub.urls_replaced", count=len(self._urls), url=self.current)
