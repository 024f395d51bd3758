"""App tokens (stored hashed) and the audit log of case access.

Tokens carry 256 random bits, so a plain SHA-256 is enough to store them: a
slow password hash protects guessable secrets, and these are not guessable.
The audit log holds ids and action names only, never personal data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

from node.errors import ConflictError, InvalidInput
from node.storage.context import StoreContext, iso
from node.storage.db import transaction

TOKEN_PREFIX = "mbe_"  # noqa: S105 -- a visible prefix, not a secret
APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Access:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def create_token(self, name: str) -> str:
        """A new token for app `name`; only its hash is stored, the token is shown once."""
        if not APP_NAME.fullmatch(name):
            raise InvalidInput("app name must be 1-64 letters, digits, dots, dashes or underscores")
        raw = self.ctx.deps.random.token_bytes(32)
        token = TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        with transaction(self.ctx.db):
            if self.ctx.one("SELECT 1 FROM app_tokens WHERE name = ?", (name,)) is not None:
                raise ConflictError(f"a token for app {name} already exists")
            self.ctx.run(
                "INSERT INTO app_tokens (name, hash, created) VALUES (?, ?, ?)",
                (name, hash_token(token), self.ctx.now()),
            )
        return token

    def app_for(self, token: str) -> str | None:
        """The app a presented token belongs to, or None."""
        if not token.isascii():
            # Tokens are ASCII; other bytes in the header arrive as surrogates and
            # could not even be hashed.
            return None
        digest = hash_token(token)
        row = self.ctx.one("SELECT name, hash FROM app_tokens WHERE hash = ?", (digest,))
        if row is None or not hmac.compare_digest(row["hash"], digest):
            return None
        return str(row["name"])

    def tokens(self) -> list[dict[str, str | None]]:
        rows = self.ctx.all("SELECT name, created, last_used FROM app_tokens ORDER BY name")
        return [{"name": r["name"], "created": iso(r["created"])} for r in rows]

    def audit(
        self, app: str, action: str, *, case_id: str | None = None, referral_id: str | None = None
    ) -> None:
        with transaction(self.ctx.db):
            self.ctx.run(
                "INSERT INTO audit (at, app, action, case_id, referral_id) VALUES (?, ?, ?, ?, ?)",
                (self.ctx.now(), app, action, case_id, referral_id),
            )

    def audit_many(self, app: str, rows: Sequence[tuple[str, str | None, str | None]]) -> None:
        """Audit rows (action, case id, referral id) of one request in one transaction.

        A list of 500 cases is 500 rows: one commit (one fsync) for all of them,
        not one each, so the event loop the API shares with the sync worker is
        not held for seconds on slow storage.
        """
        if not rows:
            return
        now = self.ctx.now()
        with transaction(self.ctx.db):
            self.ctx.db.conn.executemany(
                "INSERT INTO audit (at, app, action, case_id, referral_id) VALUES (?, ?, ?, ?, ?)",
                [(now, app, action, case_id, referral_id) for action, case_id, referral_id in rows],
            )

    def audit_rows(self, case_id: str | None = None) -> list[dict[str, object]]:
        rows = self.ctx.all(
            "SELECT at, app, action, case_id, referral_id FROM audit"
            " WHERE (? IS NULL OR case_id = ?) ORDER BY seq",
            (case_id, case_id),
        )
        return [r | {"at": iso(r["at"])} for r in rows]
