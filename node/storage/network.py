"""What the node knows about the network, and sealing messages into the outbox.

`Network.enqueue` is the one place a message is built, signed, sealed and put
into the outbox; the API (new referral, reply, status, withdrawal) and
`apply_incoming` (receipts, withdrawal confirmations) both use it, inside the
caller's transaction, so a state change and the message announcing it commit
together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import structlog

from node.clock import new_message_id
from node.domain.delivery import Delivery
from node.errors import NotEnrolled, UnknownRecipient
from node.storage.context import StoreContext, dumps
from node.storage.db import transaction
from node.sync.ports import STATE_HUB_IN_USE, EnrollmentState
from protocol.documents import Directory
from protocol.envelope import InnerMessage, seal
from protocol.errors import ProtocolError
from protocol.keys import PublicKeys
from protocol.payloads import (
    Payload,
    ReferralErase,
    ReferralReply,
    ReferralStatus,
    ReferralWithdraw,
)

log = structlog.get_logger()

# Messages that carry a referral's state and are sealed again when they expire
# undelivered (node/storage/redelivery.py). Offers are not: an undelivered
# offer expires the referral. Receipts are not: the reply proves delivery too.
RESENDABLE = frozenset(
    {ReferralReply.TYPE, ReferralStatus.TYPE, ReferralWithdraw.TYPE, ReferralErase.TYPE}
)


class Network:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        # Verifying a large directory on every send is wasteful; remember the
        # last verified one by the hash of its bytes (instance state, not global).
        self._verified: tuple[bytes, int, Directory] | None = None

    # ------------------------------------------------------------- enrollment

    def load_enrollment(self) -> EnrollmentState | None:
        row = self.ctx.one("SELECT * FROM enrollment WHERE id = 1")
        if row is None:
            return None
        in_use = self.ctx.one("SELECT value FROM sync_state WHERE key = ?", (STATE_HUB_IN_USE,))
        return EnrollmentState(
            node_id=row["node_id"],
            hub_urls=_hub_urls(row["hub_urls"], row["hub_url"]),
            hub_keys=PublicKeys(sign=row["hub_sign"], encrypt=row["hub_encrypt"]),
            certificate=row["certificate"],
            enrolled_at=row["enrolled_at"],
            hub_in_use=in_use["value"] if in_use is not None and in_use["value"] else None,
        )

    def save_enrollment(self, state: EnrollmentState) -> None:
        with transaction(self.ctx.db):
            self.ctx.run(
                "INSERT OR REPLACE INTO enrollment (id, node_id, hub_url, hub_urls, hub_sign,"
                " hub_encrypt, certificate, enrolled_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (
                    state.node_id,
                    state.hub_urls[0],
                    dumps(list(state.hub_urls)),
                    state.hub_keys.sign,
                    state.hub_keys.encrypt,
                    state.certificate,
                    state.enrolled_at,
                ),
            )

    def set_hub_urls(self, urls: Sequence[str]) -> None:
        """Replace the hub URLs (normalised, in order), nothing else of the enrollment."""
        if not urls:
            raise ValueError("at least one hub URL")
        with transaction(self.ctx.db):
            changed = self.ctx.run(
                "UPDATE enrollment SET hub_url = ?, hub_urls = ? WHERE id = 1",
                (urls[0], dumps(list(urls))),
            )
            if not changed:
                raise NotEnrolled("the node is not enrolled with a hub (run mbe-node enroll)")

    # -------------------------------------------------------------- directory

    def directory_bytes(self) -> bytes | None:
        row = self.ctx.one("SELECT data FROM directory WHERE id = 1")
        return None if row is None else bytes(row["data"])

    def directory_version(self) -> int | None:
        row = self.ctx.one("SELECT version FROM directory WHERE id = 1")
        return None if row is None else int(row["version"])

    def store_directory(self, version: int, data: bytes, etag: str | None) -> None:
        with transaction(self.ctx.db):
            self.ctx.run(
                "INSERT OR REPLACE INTO directory (id, version, data, etag, stored)"
                " VALUES (1, ?, ?, ?, ?)",
                (version, data, etag, self.ctx.now()),
            )

    def directory(self) -> Directory:
        """The stored directory, verified with the hub key from the enrollment."""
        state = self.load_enrollment()
        if state is None:
            raise NotEnrolled("the node is not enrolled with a hub (run mbe-node enroll)")
        data = self.directory_bytes()
        if data is None:
            raise NotEnrolled("the node holds no office directory yet (sync with the hub)")
        now = self.ctx.now()
        digest = hashlib.sha256(data + state.hub_keys.sign).digest()
        if self._verified is not None and self._verified[0] == digest:
            if self._verified[1] > now:
                return self._verified[2]
            raise NotEnrolled("the stored office directory has expired (sync with the hub)")
        try:
            directory = Directory.verify(data, state.hub_keys, now=now)
        except ProtocolError as exc:
            raise NotEnrolled(f"the stored office directory is not usable ({exc.code})") from None
        self._verified = (digest, directory.expires, directory)
        return directory

    def search(
        self, *, service: str | None, language: str | None, area: str | None
    ) -> list[dict[str, Any]]:
        directory = self.directory()
        out = []
        for office in directory.offices:
            if office.status != "active":
                continue
            if service is not None and service not in office.services:
                continue
            if language is not None and language not in office.languages:
                continue
            if area is not None and area.casefold() not in office.area.casefold():
                continue
            out.append(
                {
                    "node_id": office.node_id,
                    "name": office.name,
                    "org": office.org,
                    "services": list(office.services),
                    "languages": list(office.languages),
                    "area": office.area,
                }
            )
        return out

    # --------------------------------------------------------------- sealing

    def recipient_keys(self, recipient: str) -> PublicKeys:
        office = self.directory().office(recipient)
        if office is None or office.status != "active":
            raise UnknownRecipient(f"office {recipient} is not an active office in the directory")
        return office.keys

    def own_id(self) -> str:
        state = self.load_enrollment()
        if state is None:
            raise NotEnrolled("the node is not enrolled with a hub (run mbe-node enroll)")
        return state.node_id

    def enqueue(self, recipient: str, payload: Payload, referral_id: str | None) -> str:
        """Build, sign and seal a message to `recipient` and put it in the outbox."""
        sender = self.own_id()
        public = self.recipient_keys(recipient)
        now = self.ctx.now()
        inner = InnerMessage(
            msg_id=new_message_id(self.ctx.deps.random, now),
            sender=sender,
            recipient=recipient,
            created=now,
            expires=now + self.ctx.message_ttl,
            payload=payload,
        )
        envelope = seal(
            inner, self.ctx.keys, public, ephemeral_secret=self.ctx.deps.random.token_bytes(32)
        )
        with transaction(self.ctx.db):
            self.ctx.run(
                "INSERT INTO outbox (msg_id, recipient, envelope, expires, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (inner.msg_id, recipient, envelope.encode(), inner.expires, now),
            )
            # Kept for a re-send should this message expire undelivered.
            kept = dumps(payload.to_map()) if inner.type in RESENDABLE else None
            self.ctx.run(
                "INSERT INTO sent_log (msg_id, type, recipient, referral_id, created, status,"
                " payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (inner.msg_id, inner.type, recipient, referral_id, now, Delivery.QUEUED, kept),
            )
        log.info("outbox.queued", msg_id=inner.msg_id, type=inner.type, recipient=recipient)
        return inner.msg_id


def _hub_urls(stored: str | None, first: str) -> tuple[str, ...]:
    """The stored list; the one `hub_url` if the list is missing or unreadable."""
    try:
        urls = json.loads(stored or "[]")
    except ValueError:
        urls = None
    if isinstance(urls, list) and urls and all(isinstance(u, str) and u for u in urls):
        return tuple(dict.fromkeys(urls))
    return (first,)
