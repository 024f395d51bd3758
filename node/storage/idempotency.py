"""Idempotency keys: a retried request gets the first answer, not a second change.

An app that sends `Idempotency-Key: K` with a change (a new case, consent,
referral, an answer to one) and loses the answer (the node was killed, the
connection cut) may send the same request with the same key again: the node
answers as it did the first time, and nothing is done twice. The first answer
is written in the same transaction as the change (node/api/handlers.py
`_db`), so there is no moment at which the change exists without it. The
same key with another request (method, path, query or body) is refused, and
keys are per app token.

Stored answers can hold client data (the case the app created), so they live
no longer than needed: a day (`KEEP_SECONDS`, purged by housekeeping), and
they go at once with the case they belong to when it is erased
(node/storage/erasure.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from node.storage.context import StoreContext

HEADER = "Idempotency-Key"
KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
KEEP_SECONDS = 86400


@dataclass(frozen=True)
class IdempotentRequest:
    """A change an app sent with an Idempotency-Key."""

    app: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredAnswer:
    fingerprint: str
    status: int
    body: bytes


class Replayed(Exception):
    """Raised inside the request's transaction when the key was seen before; the
    API middleware answers with the stored answer (or refuses another request)."""

    def __init__(self, request: IdempotentRequest, answer: StoredAnswer) -> None:
        super().__init__("idempotency key seen before")
        self.request = request
        self.answer = answer


def fingerprint(method: str, path_qs: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path_qs.encode("utf-8", "surrogatepass"), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyKeys:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def check(self, request: IdempotentRequest) -> None:
        """Raise Replayed when this app used this key before (in the caller's
        transaction, before the change)."""
        row = self.ctx.one(
            "SELECT fingerprint, status, body FROM idempotency WHERE app = ? AND key = ?",
            (request.app, request.key),
        )
        if row is not None:
            answer = StoredAnswer(row["fingerprint"], int(row["status"]), bytes(row["body"]))
            raise Replayed(request, answer)

    def record(
        self, request: IdempotentRequest, status: int, body: bytes, case_id: str | None
    ) -> None:
        """Keep the answer, in the transaction of the change it answers."""
        self.ctx.run(
            "INSERT INTO idempotency (app, key, fingerprint, status, body, case_id, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                request.app,
                request.key,
                request.fingerprint,
                status,
                body,
                case_id,
                self.ctx.now(),
            ),
        )

    def forget_case(self, case_id: str) -> None:
        """Drop the answers that belong to an erased case (caller's transaction)."""
        self.ctx.run("DELETE FROM idempotency WHERE case_id = ?", (case_id,))

    def purge(self) -> int:
        """Drop answers older than KEEP_SECONDS; the number dropped."""
        return self.ctx.run(
            "DELETE FROM idempotency WHERE created <= ?", (self.ctx.now() - KEEP_SECONDS,)
        )
