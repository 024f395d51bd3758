"""One exception hierarchy for everything the node refuses.

Every error the node raises on purpose is a `NodeError`, including the link
to the hub (`SyncError`, node/sync/errors.py) and statistics
(`StatsRefused`, node/stats/errors.py); class names are unique in the package.
Each error carries the HTTP status and a problem type so the API boundary can
turn any `NodeError` into an RFC 9457 problem without a lookup table, and the
CLI can print its message as one line. Messages name fields and ids, never
values: an error text may end up in a log.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base class: a request or command the node cannot carry out."""

    status = 400
    kind = "bad-request"
    title = "Bad request"


class EnrollFailed(NodeError):
    """`mbe-node enroll` did not succeed; the message says why, in one line."""

    kind = "enroll-failed"
    title = "Enrollment failed"


class ConfigError(NodeError):
    """The data directory, config file or key file is missing or invalid."""

    status = 500
    kind = "config"
    title = "Configuration error"


class InvalidInput(NodeError):
    """A value is outside its code list or range (beyond what the spec checks)."""

    status = 422
    kind = "invalid-input"
    title = "Invalid input"


class NotFound(NodeError):
    """The case, consent, referral or other record does not exist."""

    status = 404
    kind = "not-found"
    title = "Not found"


class Gone(NotFound):
    """The case existed and was erased: nothing of it is left to read or change."""

    status = 410
    kind = "gone"
    title = "Erased"


class IllegalTransition(NodeError):
    """A referral cannot move from its current state by this event."""

    status = 409
    kind = "illegal-transition"
    title = "Illegal state transition"

    def __init__(self, side: str, state: str, event: str) -> None:
        super().__init__(f"{side} referral in state {state} does not allow {event}")
        self.side = side
        self.state = state
        self.event = event


class ConflictError(NodeError):
    """The record is in a state that does not allow the change (e.g. case closed)."""

    status = 409
    kind = "conflict"
    title = "Conflict"


class ConsentRefused(NodeError):
    """No valid consent covers the referral; nothing was sent."""

    status = 422
    kind = "consent-missing"
    title = "Referral not covered by a valid consent"


class SyncError(NodeError):
    """Base class of what the link to the hub raises; the branches are in
    node/sync/errors.py. Defined here so that `NotEnrolled` can be one of them."""

    status = 502
    kind = "sync"
    title = "Sync with the hub failed"


class NotEnrolled(SyncError):
    """The node has no enrollment or no usable directory yet, so it cannot seal or
    sync; `mbe-node enroll` (or a sync that fetches the directory) comes first.

    The one class for both: raised by the store when a message cannot be sealed
    and by the sync worker before it talks to the hub; node.sync.errors
    re-exports it.
    """

    status = 409
    kind = "not-enrolled"
    title = "Node is not ready to send"


class UnknownRecipient(NodeError):
    """The recipient is not an active office in the stored directory."""

    status = 422
    kind = "unknown-recipient"
    title = "Unknown recipient"


class Unauthorized(NodeError):
    """No valid bearer token."""

    status = 401
    kind = "unauthorized"
    title = "Unauthorized"
