"""One exception hierarchy for everything the hub refuses or cannot do.

`HubError` messages are written for the operator or the node administrator who
reads them and never carry message contents. The CLI turns any `HubError` into
one line on stderr; the HTTP layer turns `Problem` into problem+json.
"""

from __future__ import annotations

from protocol.hub_api import ProblemKind


class HubError(Exception):
    """Base class of every error the hub raises on purpose."""


class ConfigError(HubError):
    """hub.toml is missing, unreadable or holds a bad value."""


class DataDirError(HubError):
    """The data directory is missing, already initialised, or its key file is unsafe."""


class NotFoundError(HubError):
    """A site, code or other record named by the operator does not exist."""


class StorageError(HubError):
    """The database is unusable (e.g. from a newer version of the hub)."""


class Problem(HubError):
    """A refusal of an HTTP request: an RFC 9457 problem with a short type name.

    `kind` is a member of the contract's `ProblemKind` (protocol/hub_api.py), never
    a bare string, so the hub cannot send a kind the node does not know.
    """

    def __init__(
        self,
        kind: ProblemKind,
        status: int,
        detail: str,
        title: str | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.status = status
        self.detail = detail
        self.title = title or kind.replace("-", " ").capitalize()
        # Seconds for a `Retry-After` header: when it is worth asking again.
        self.retry_after = retry_after


# How long a node should wait before it asks again after `storage-full`. Space
# freed by the operator (or by acks) takes effect at once; a node that comes
# back earlier only gets the same answer.
STORAGE_FULL_RETRY_AFTER = 30


class StorageFull(Problem):
    """The hub's disk is full: a write failed (SQLite's SQLITE_FULL, ENOSPC).

    Nothing of the request was stored, so sending it again later is safe. 507
    Insufficient Storage with `Retry-After`; the node's client takes any 5xx as
    "hub unavailable, try again with backoff". Raised by `DbWorker.run`, which
    also logs the condition (at most once a minute, without a traceback).
    """

    def __init__(self) -> None:
        super().__init__(
            ProblemKind.STORAGE_FULL,
            507,
            "the hub's disk is full; nothing of this request was stored, send it again later",
            title="Insufficient storage",
            retry_after=STORAGE_FULL_RETRY_AFTER,
        )


class InvalidInputError(HubError):
    """An operator's input (a site name, a service code, ...) is not acceptable."""


# How long a node should wait after `storage-unavailable`: a PostgreSQL failover
# takes seconds to tens of seconds.
STORAGE_UNAVAILABLE_RETRY_AFTER = 5


class StorageUnavailable(Problem):
    """The database cannot be reached or is busy for now (a PostgreSQL failover, a
    lock held by another hub process past the lock timeout).

    Nothing of the request was stored (its transaction did not commit), so
    sending it again is safe. 503 with `Retry-After`; the node's client takes it
    as "hub unavailable, try again with backoff" and, with several hub URLs,
    tries the next one.
    """

    def __init__(self) -> None:
        super().__init__(
            ProblemKind.STORAGE_UNAVAILABLE,
            503,
            "the hub's database cannot be reached just now; nothing of this request "
            "was stored, send it again later",
            title="Storage unavailable",
            retry_after=STORAGE_UNAVAILABLE_RETRY_AFTER,
        )
