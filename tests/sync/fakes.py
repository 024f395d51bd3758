"""An in-memory SyncStore that records every call, in order (magic-wormhole style).

`events` is a list of tuples such as ("apply", msg_id) or ("accepted", (ids...));
tests share one list between this store and the fake hub to prove ordering
(e.g. that a message is acknowledged only after it was applied).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from node.errors import NotEnrolled
from node.sync.ports import EnrollmentState, OutgoingMessage
from protocol.envelope import InnerMessage


class StoreFailure(Exception):
    """Stands in for a database error inside apply_incoming."""


@dataclass
class FakeStore:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    enrollment: EnrollmentState | None = None
    outbox: dict[str, OutgoingMessage] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    applied: list[InnerMessage] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    directory: bytes | None = None
    directory_version: int = 0
    directory_etag: str | None = None
    state: dict[str, str] = field(default_factory=dict)
    # Ids whose apply_incoming raises StoreFailure (until removed).
    fail_apply: set[str] = field(default_factory=set)
    # Outbox ids retired by outbox_expired, and ids it cannot retire yet.
    expired: list[str] = field(default_factory=list)
    defer_expired: set[str] = field(default_factory=set)
    # Ids whose apply_incoming raises the given exception (a poisoned message).
    poison: dict[str, Exception] = field(default_factory=dict)
    # Called with each applied message; what it returns goes into the outbox (an
    # answer queued while the message is applied, as a receipt is).
    answer: Callable[[InnerMessage], OutgoingMessage] | None = None

    # --- enrollment
    def load_enrollment(self) -> EnrollmentState | None:
        # As node/storage: the URL the worker recorded in use is the hint to start at.
        if self.enrollment is None:
            return None
        return replace(self.enrollment, hub_in_use=self.state.get("hub_in_use"))

    def save_enrollment(self, state: EnrollmentState) -> None:
        self.events.append(("save_enrollment", state.node_id))
        self.enrollment = state

    def set_hub_urls(self, urls: Sequence[str]) -> None:
        if self.enrollment is None:
            raise NotEnrolled("not enrolled")
        self.events.append(("set_hub_urls", tuple(urls)))
        self.enrollment = replace(self.enrollment, hub_urls=tuple(urls))

    def complete_enrollment(self, state: EnrollmentState, version: int, directory: bytes) -> None:
        self.store_directory(version, directory, None)
        self.save_enrollment(state)
        self.state["directory_version"] = str(version)

    # --- outbox
    def put(self, msg: OutgoingMessage) -> None:
        self.outbox[msg.msg_id] = msg

    def outbox_pending(self, limit: int) -> list[OutgoingMessage]:
        return [m for m in self.outbox.values() if m.msg_id not in self.rejected][:limit]

    def outbox_accepted(self, msg_ids: Sequence[str], now: int) -> None:
        self.events.append(("accepted", tuple(msg_ids)))
        for i in msg_ids:
            self.outbox.pop(i, None)

    def outbox_rejected(self, msg_id: str, problem: str, now: int) -> None:
        self.events.append(("rejected", msg_id, problem))
        self.rejected[msg_id] = problem

    def outbox_expired(self, msg_id: str, now: int) -> bool:
        if msg_id in self.defer_expired:
            self.events.append(("expiry_deferred", msg_id))
            return False
        self.events.append(("expired", msg_id))
        self.outbox.pop(msg_id, None)
        self.expired.append(msg_id)
        return True

    def outbox_attempted(self, msg_ids: Sequence[str], now: int) -> None:
        self.events.append(("attempted", tuple(msg_ids)))
        for i in msg_ids:
            m = self.outbox[i]
            self.outbox[i] = OutgoingMessage(
                m.msg_id, m.recipient, m.envelope, m.expires, m.attempts + 1
            )

    # --- inbox
    def inbox_seen(self, msg_id: str) -> bool:
        return msg_id in self.seen

    def apply_incoming(self, inner: InnerMessage, now: int) -> None:
        if inner.msg_id in self.fail_apply:
            self.events.append(("apply_failed", inner.msg_id))
            raise StoreFailure("disk full")
        if inner.msg_id in self.poison:
            self.events.append(("apply_failed", inner.msg_id))
            raise self.poison[inner.msg_id]
        if inner.msg_id in self.seen:
            return
        self.seen.add(inner.msg_id)
        self.applied.append(inner)
        self.events.append(("apply", inner.msg_id))
        if self.answer is not None:
            self.put(self.answer(inner))

    def record_refused(self, msg_id: str, sender: str, reason: str, now: int) -> None:
        self.events.append(("refused", msg_id, reason))
        self.refused.append((msg_id, sender, reason))

    # --- directory
    def directory_bytes(self) -> bytes | None:
        return self.directory

    def store_directory(self, version: int, data: bytes, etag: str | None) -> None:
        self.events.append(("directory", version))
        self.directory, self.directory_version, self.directory_etag = data, version, etag

    # --- sync health
    def set_sync_state(self, key: str, value: str) -> None:
        self.state[key] = value

    def get_sync_state(self, key: str) -> str | None:
        return self.state.get(key)
