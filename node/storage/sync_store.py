"""`SqliteSyncStore`: the node database as the sync worker sees it (node.sync.ports.SyncStore)."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from node.domain.delivery import DeliveryEvent
from node.errors import NodeError, NotEnrolled, UnknownRecipient
from node.storage import sent_log
from node.storage.context import StoreContext
from node.storage.db import scrub, transaction
from node.storage.erasure import Erasure
from node.storage.network import Network
from node.storage.redelivery import Redelivery
from node.storage.referrals import Referrals
from node.sync.errors import ApplyDeferred, ApplyRefused
from node.sync.ports import STATE_DIRECTORY_VERSION, EnrollmentState, OutgoingMessage
from protocol.envelope import InnerMessage
from protocol.errors import ProtocolError
from protocol.payloads import ErasureReceipt, ExpiryNotice, ReferralErase, ReferralWithdraw

log = structlog.get_logger()


class SqliteSyncStore:
    """Implements node.sync.ports.SyncStore structurally (checked in the tests)."""

    def __init__(
        self, ctx: StoreContext, network: Network, referrals: Referrals, erasure: Erasure
    ) -> None:
        self.ctx = ctx
        self.network = network
        self.referrals = referrals
        self.erasure = erasure
        self.redelivery = Redelivery(ctx, referrals)

    # --- enrollment
    def load_enrollment(self) -> EnrollmentState | None:
        return self.network.load_enrollment()

    def save_enrollment(self, state: EnrollmentState) -> None:
        self.network.save_enrollment(state)

    def set_hub_urls(self, urls: Sequence[str]) -> None:
        self.network.set_hub_urls(urls)

    def complete_enrollment(self, state: EnrollmentState, version: int, directory: bytes) -> None:
        with transaction(self.ctx.db):
            self.network.store_directory(version, directory, None)
            self.network.save_enrollment(state)
            self.set_sync_state(STATE_DIRECTORY_VERSION, str(version))

    # --- outbox
    def outbox_pending(self, limit: int) -> list[OutgoingMessage]:
        rows = self.ctx.all(
            "SELECT msg_id, recipient, envelope, expires, attempts FROM outbox"
            " WHERE rejected IS NULL ORDER BY created, rowid LIMIT ?",
            (limit,),
        )
        return [
            OutgoingMessage(
                msg_id=r["msg_id"],
                recipient=r["recipient"],
                envelope=bytes(r["envelope"]),
                expires=r["expires"],
                attempts=r["attempts"],
            )
            for r in rows
        ]

    def outbox_accepted(self, msg_ids: Sequence[str], now: int) -> None:
        with transaction(self.ctx.db):
            for msg_id in msg_ids:
                self.ctx.run("DELETE FROM outbox WHERE msg_id = ?", (msg_id,))
                sent_log.advance(self.ctx, msg_id, DeliveryEvent.HUB_ACCEPTED)

    def outbox_rejected(self, msg_id: str, problem: str, now: int) -> None:
        with transaction(self.ctx.db):
            self.ctx.run(
                "UPDATE outbox SET rejected = ?, rejected_at = ? WHERE msg_id = ?",
                (problem[:200], now, msg_id),
            )
            sent_log.advance(self.ctx, msg_id, DeliveryEvent.HUB_REJECTED)
        log.warning("outbox.rejected", msg_id=msg_id, problem=problem[:200])

    def outbox_expired(self, msg_id: str, now: int) -> bool:
        """The message's expiry passed before the hub took it: retire it and, for a
        state-carrying message, seal it again (node/storage/redelivery.py).

        False when it cannot be sealed again yet (no usable directory, typical
        after a long outage): the row stays and the next cycle tries again.
        """
        try:
            with transaction(self.ctx.db):
                self.ctx.run("DELETE FROM outbox WHERE msg_id = ?", (msg_id,))
                self.redelivery.expired(msg_id)
        except NotEnrolled:
            return False
        return True

    def outbox_attempted(self, msg_ids: Sequence[str], now: int) -> None:
        with transaction(self.ctx.db):
            for msg_id in msg_ids:
                self.ctx.run(
                    "UPDATE outbox SET attempts = attempts + 1, last_attempt = ? WHERE msg_id = ?",
                    (now, msg_id),
                )

    # --- inbox
    def inbox_seen(self, msg_id: str) -> bool:
        return self.ctx.one("SELECT 1 FROM inbox_seen WHERE msg_id = ?", (msg_id,)) is not None

    def apply_incoming(self, inner: InnerMessage, now: int) -> None:
        """Apply one message in one transaction (see `_apply`).

        A failure that concerns only this message is rolled back and reported
        to the worker as `ApplyDeferred` or `ApplyRefused` (docs/node.md,
        "Incoming messages"); database errors propagate.
        """
        try:
            self._apply(inner, now)
        except (NotEnrolled, UnknownRecipient) as exc:
            # The message was opened with the worker's directory, in which its
            # sender is an active office; an answer to it fails to seal only when
            # the stored directory is missing, expired or older. A refresh fixes
            # that, so the message waits at the hub (at most until it expires there).
            raise ApplyDeferred(exc.kind) from None
        except NodeError as exc:
            raise ApplyRefused(f"not-applicable: {exc.kind}") from None
        except ProtocolError as exc:
            # E.g. the sender's key cannot be sealed to: no later attempt can succeed.
            raise ApplyRefused(f"not-applicable: {exc.code}") from None

    def _apply(self, inner: InnerMessage, now: int) -> None:
        with transaction(self.ctx.db):
            if self.inbox_seen(inner.msg_id):
                log.info("inbox.duplicate", msg_id=inner.msg_id)
                return
            self.ctx.run(
                "INSERT INTO inbox_seen (msg_id, sender, type, received) VALUES (?, ?, ?, ?)",
                (inner.msg_id, inner.sender, inner.type, now),
            )
            if isinstance(inner.payload, ExpiryNotice):
                problem = self.redelivery.expired(inner.payload.of_msg_id)
            elif isinstance(inner.payload, (ReferralErase, ErasureReceipt)):
                problem = self.erasure.apply(inner, now)
            else:
                problem = self.referrals.apply(inner, now)
            if problem is not None:
                self.ctx.run(
                    "INSERT INTO refused (msg_id, sender, reason, at) VALUES (?, ?, ?, ?)",
                    (inner.msg_id, inner.sender, problem, now),
                )
        if problem is None:
            if inner.type in (ReferralWithdraw.TYPE, ReferralErase.TYPE):
                scrub(self.ctx.db)
        else:
            log.warning("inbox.ignored", msg_id=inner.msg_id, type=inner.type, reason=problem)

    def record_refused(self, msg_id: str, sender: str, reason: str, now: int) -> None:
        with transaction(self.ctx.db):
            self.ctx.run(
                "INSERT INTO refused (msg_id, sender, reason, at) VALUES (?, ?, ?, ?)",
                (msg_id, sender, reason[:200], now),
            )

    # --- directory
    def directory_bytes(self) -> bytes | None:
        return self.network.directory_bytes()

    def store_directory(self, version: int, data: bytes, etag: str | None) -> None:
        self.network.store_directory(version, data, etag)

    # --- sync health
    def set_sync_state(self, key: str, value: str) -> None:
        with transaction(self.ctx.db):
            self.ctx.run(
                "INSERT INTO sync_state (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def get_sync_state(self, key: str) -> str | None:
        row = self.ctx.one("SELECT value FROM sync_state WHERE key = ?", (key,))
        return None if row is None else str(row["value"])
