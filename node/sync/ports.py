"""What the sync worker needs from the node's storage and domain, as Protocols.

The sync worker only moves bytes between the local database and the hub; the
domain (node/domain, node/storage) decides what a message means. This file
is the seam: node/storage implements `SyncStore`, node/sync uses it, and the
sync tests use an in-memory fake that records calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar

from protocol.envelope import InnerMessage
from protocol.keys import PublicKeys

P = ParamSpec("P")
T = TypeVar("T")


class Runner(Protocol):
    """Runs a function where the store's connection lives and awaits its result.

    In `mbe-node serve` that is the database thread (`NodeStore.run`,
    node/storage/thread.py): the event loop never waits on SQLite. Tests with an
    in-memory fake store use `inline`.
    """

    def __call__(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


async def inline(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """A `Runner` that calls `fn` right here (a store without a thread of its own)."""
    return fn(*args, **kwargs)


@dataclass(frozen=True)
class OutgoingMessage:
    """A sealed envelope waiting in the outbox until the hub durably accepted it."""

    msg_id: str
    recipient: str
    envelope: bytes
    expires: int
    attempts: int = 0


@dataclass(frozen=True)
class EnrollmentState:
    """What `mbe-node enroll` learned: who we are, whom we trust, where the hub is."""

    node_id: str
    # The hub's URLs in the administrator's order, normalised; the first is
    # preferred (node/sync/hub_urls.py). One URL unless several were given.
    hub_urls: tuple[str, ...]
    hub_keys: PublicKeys
    certificate: bytes
    enrolled_at: int
    # The URL the running node used last (sync state STATE_HUB_IN_USE), where a
    # new client starts; None: the first. Not part of the enrollment record.
    hub_in_use: str | None = None

    def __post_init__(self) -> None:
        if not self.hub_urls or isinstance(self.hub_urls, str):
            raise ValueError("an enrollment needs a tuple of at least one hub URL")

    @property
    def hub_url(self) -> str:
        """The preferred (first) hub URL."""
        return self.hub_urls[0]


class SyncStore(Protocol):
    # --- enrollment
    def load_enrollment(self) -> EnrollmentState | None: ...

    def save_enrollment(self, state: EnrollmentState) -> None: ...

    def set_hub_urls(self, urls: Sequence[str]) -> None:
        """Replace the enrolled node's hub URLs (normalised, in order); NotEnrolled
        when there is no enrollment. Nothing else of the enrollment changes."""

    def complete_enrollment(self, state: EnrollmentState, version: int, directory: bytes) -> None:
        """Save the enrollment and its first directory in ONE transaction: a crash
        in between must not leave a node that holds one without the other."""

    # --- outbox: the worker uploads, the hub acks, the row is retired
    def outbox_pending(self, limit: int) -> list[OutgoingMessage]: ...

    def outbox_accepted(self, msg_ids: Sequence[str], now: int) -> None:
        """The hub durably stored these; they leave the outbox."""

    def outbox_rejected(self, msg_id: str, problem: str, now: int) -> None:
        """The hub refused this one for good (e.g. unknown recipient); keep it, flagged."""

    def outbox_expired(self, msg_id: str, now: int) -> bool:
        """Its expiry passed before the hub took it (or the hub refused it as expired).

        Retire it; the domain seals a new message if it carries state the other
        office must learn (a withdrawal above all). Returns False when that
        cannot be done yet (the row stays in the outbox, tried next cycle).
        """

    def outbox_attempted(self, msg_ids: Sequence[str], now: int) -> None:
        """An upload failed for a transient reason; count the attempt."""

    # --- inbox: fetched envelopes are opened by the worker, applied here
    def inbox_seen(self, msg_id: str) -> bool: ...

    def apply_incoming(self, inner: InnerMessage, now: int) -> None:
        """Process one verified message in one transaction and remember its id.

        May enqueue answers (receipts, confirmations) into the outbox in the same
        transaction. Must be idempotent by `inner.msg_id`. When only this message
        cannot be applied, roll back and raise `ApplyRefused` (never can be: the
        worker records it as refused and acknowledges it) or `ApplyDeferred`
        (not yet: it stays at the hub); both are in node/sync/errors.py.
        """

    def record_refused(self, msg_id: str, sender: str, reason: str, now: int) -> None:
        """A fetched envelope failed verification; keep a metadata-only record."""

    # --- directory
    def directory_bytes(self) -> bytes | None: ...

    def store_directory(self, version: int, data: bytes, etag: str | None) -> None: ...

    # --- sync health (shown by `mbe-node status` and the status API)
    def set_sync_state(self, key: str, value: str) -> None: ...

    def get_sync_state(self, key: str) -> str | None: ...


# Keys of `set_sync_state` written by the sync worker (values are text):
# read by `mbe-node status` and the status API.
STATE_LAST_SYNC = "last_sync"  # unix time of the last complete sync cycle
STATE_LAST_ERROR = "last_error"  # one line, "" when the last cycle succeeded
STATE_HUB_REACHABLE = "hub_reachable"  # "true" | "false"
STATE_DIRECTORY_VERSION = "directory_version"  # version of the held, verified directory
STATE_PUSH_CONNECTED = "push_connected"  # "true" | "false"
# The hub URL that answered the running node last (of several, node/sync/hub_urls.py).
STATE_HUB_IN_USE = "hub_in_use"
# This node's clock minus the hub's in seconds, measured on the last answer.
STATE_CLOCK_OFFSET = "clock_offset"
# Where a running `mbe-node serve` listens ({"url", "pid"} as JSON; "" once stopped).
STATE_API_LISTENING = "api_listening"
