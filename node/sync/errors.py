"""The link to the hub's branch of the node's exception hierarchy (node/errors.py).

Every message is one line written for the site administrator: `mbe-node`
prints `str(exc)` and exits non-zero. Messages name the hub URL and the
problem, never message contents or personal data.

The split that matters to the worker is transient versus permanent:
`HubUnreachable` (connection errors, timeouts, 5xx, 429) is retried with
backoff; `HubRefused` (a 4xx with a problem type) is the hub saying no.
"""

from __future__ import annotations

# SyncError (the base of this branch) and NotEnrolled live in node/errors.py,
# so that the store and the sync worker raise one and the same NotEnrolled.
from node.errors import NotEnrolled, SyncError

__all__ = [
    "AlreadyEnrolled",
    "ApplyDeferred",
    "ApplyFailed",
    "ApplyRefused",
    "BadEnrollmentCode",
    "DirectoryRejected",
    "EnrollmentError",
    "EnrollmentInvalid",
    "EnrollmentRefused",
    "HubKeyMismatch",
    "HubRefused",
    "HubResponseError",
    "HubUnreachable",
    "NotEnrolled",
    "OtherHub",
    "SyncError",
]


class HubUnreachable(SyncError):
    """Transient: the hub could not be reached or is overloaded; try again later.

    `hub_status` is the HTTP status when the hub (or its proxy) answered (5xx, 429),
    None when no answer came (connection error, timeout): a hub that answers
    may still serve other requests (e.g. its inbox while its disk is full).
    `retry_after` is the answer's `Retry-After` in seconds, if it had one.
    """

    def __init__(
        self, message: str, *, hub_status: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.hub_status = hub_status
        self.retry_after = retry_after


class HubRefused(SyncError):
    """Permanent: the hub answered 4xx; `problem` is the last part of the problem type URI."""

    def __init__(self, problem: str, detail: str, status: int) -> None:
        self.problem = problem
        self.detail = detail
        self.status = status
        super().__init__(f"the hub refused the request ({problem}): {detail}")


class HubResponseError(SyncError):
    """The hub answered something that does not follow docs/hub-api.md."""


class DirectoryRejected(SyncError):
    """The hub sent a directory we must not use (unsigned, older or expired)."""


class EnrollmentError(SyncError):
    """Base class of enrollment failures."""


class BadEnrollmentCode(EnrollmentError):
    """The code is mistyped; caught before any network call."""


class AlreadyEnrolled(EnrollmentError):
    """The node holds an enrollment already; enrolling again would replace its identity."""


class HubKeyMismatch(EnrollmentError):
    """The hub's keys do not match the fingerprint in the code: possibly a man in the middle."""


class EnrollmentRefused(EnrollmentError):
    """The hub refused the code (unknown, used or expired)."""


class EnrollmentInvalid(EnrollmentError):
    """The hub's answer does not verify (certificate or directory)."""


class OtherHub(SyncError):
    """A URL given as one of the hub's answers as another hub, or not as a hub at all."""


class ApplyFailed(SyncError):
    """`SyncStore.apply_incoming` could not apply one message; `reason` is a short code.

    The store rolled the message's transaction back. Subclasses say whether
    waiting can help; either way only this message is affected, never the
    rest of the inbox.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"incoming message not applied ({reason})")


class ApplyRefused(ApplyFailed):
    """Permanent: applying this message can never succeed (e.g. its answer cannot be
    sealed to the sender's key); the worker records it as refused and acknowledges it."""


class ApplyDeferred(ApplyFailed):
    """Transient: the node cannot apply this message yet (e.g. its directory is stale or
    expired); the message stays at the hub and comes back next cycle."""
