"""App tokens (stored hashed) and the audit log of case access.

Tokens carry 256 random bits, so a plain SHA-256 is enough to store them: a
slow password hash protects guessable secrets, and these are not guessable.
The audit log holds ids and action names only, never personal data; it is a
hash chain, written by node/storage/audit_chain.py.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from node.errors import ConflictError, InvalidInput, NotFound
from node.storage.audit_chain import AuditChain
from node.storage.context import StoreContext, iso
from node.storage.db import transaction

TOKEN_PREFIX = "mbe_"  # noqa: S105 -- a visible prefix, not a secret
APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# `token list` shows this much of the token's SHA-256 as its id: enough to tell
# tokens apart, and a hash prefix of 256 random bits reveals nothing usable.
TOKEN_ID_CHARS = 12
# last_used is written at most this often per token (seconds): a write on every
# request would cost an fsync each.
LAST_USED_RESOLUTION = 3600


@dataclass(frozen=True)
class TokenInfo:
    """What `mbe-node token list` shows of an app token (never the token itself)."""

    name: str
    token_id: str
    created: int
    last_used: int | None
    revoked: int | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Access:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.chain = AuditChain(ctx)

    def create_token(self, name: str) -> str:
        """A new token for app `name`; only its hash is stored, the token is shown once.

        A revoked app's name may be given a new token (the old row is replaced).
        """
        if not APP_NAME.fullmatch(name):
            raise InvalidInput("app name must be 1-64 letters, digits, dots, dashes or underscores")
        raw = self.ctx.deps.random.token_bytes(32)
        token = TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        with transaction(self.ctx.db):
            row = self.ctx.one("SELECT revoked FROM app_tokens WHERE name = ?", (name,))
            if row is not None and row["revoked"] is None:
                raise ConflictError(f"a token for app {name} already exists")
            self.ctx.run("DELETE FROM app_tokens WHERE name = ?", (name,))
            self.ctx.run(
                "INSERT INTO app_tokens (name, hash, created) VALUES (?, ?, ?)",
                (name, hash_token(token), self.ctx.now()),
            )
            self._audit_token(name, "token.create")
        return token

    def app_for(self, token: str) -> str | None:
        """The app a presented, unrevoked token belongs to, or None."""
        if not token.isascii():
            # Tokens are ASCII; other bytes in the header arrive as surrogates and
            # could not even be hashed.
            return None
        digest = hash_token(token)
        row = self.ctx.one(
            "SELECT name, hash, last_used FROM app_tokens WHERE hash = ? AND revoked IS NULL",
            (digest,),
        )
        if row is None or not hmac.compare_digest(row["hash"], digest):
            return None
        now = self.ctx.now()
        if row["last_used"] is None or now - row["last_used"] >= LAST_USED_RESOLUTION:
            with transaction(self.ctx.db):
                self.ctx.run("UPDATE app_tokens SET last_used = ? WHERE hash = ?", (now, digest))
        return str(row["name"])

    def tokens(self) -> list[TokenInfo]:
        """Every app token's metadata (never the token), active first, by name."""
        rows = self.ctx.all(
            "SELECT name, hash, created, last_used, revoked FROM app_tokens"
            " ORDER BY revoked IS NOT NULL, name"
        )
        return [
            TokenInfo(
                name=r["name"],
                token_id=r["hash"][:TOKEN_ID_CHARS],
                created=r["created"],
                last_used=r["last_used"],
                revoked=r["revoked"],
            )
            for r in rows
        ]

    def revoke_token(self, name_or_id: str) -> TokenInfo:
        """Revoke the token of an app, named by app name or by the id `token list` shows."""
        with transaction(self.ctx.db):
            found = [t for t in self.tokens() if name_or_id in (t.name, t.token_id)]
            if not found:
                raise NotFound(f"no app token named {name_or_id[:64]!r}")
            info = found[0]
            if info.revoked is not None:
                raise ConflictError(f"the token of app {info.name} is already revoked")
            now = self.ctx.now()
            self.ctx.run("UPDATE app_tokens SET revoked = ? WHERE name = ?", (now, info.name))
            self._audit_token(info.name, "token.revoke")
        return dataclasses.replace(info, revoked=now)

    def _audit_token(self, name: str, action: str) -> None:
        self.chain.append(name, None, [(action, None, None)])

    def audit(
        self,
        app: str,
        action: str,
        *,
        case_id: str | None = None,
        referral_id: str | None = None,
        actor: str | None = None,
    ) -> None:
        """One audit entry (chained, node/storage/audit_chain.py) in the caller's
        transaction, or its own; `actor` is the acting staff member's pseudonym."""
        self.chain.append(app, actor, [(action, case_id, referral_id)])

    def audit_many(
        self,
        app: str,
        rows: Sequence[tuple[str, str | None, str | None]],
        *,
        actor: str | None = None,
    ) -> None:
        """Audit rows (action, case id, referral id) of one request in one transaction.

        A list of 500 cases is 500 rows: one commit (one fsync) for all of them,
        not one each, so the database thread the API shares with the sync
        worker is not held for seconds on slow storage.
        """
        self.chain.append(app, actor, rows)

    def audit_rows(self, case_id: str | None = None) -> list[dict[str, object]]:
        rows = self.ctx.all(
            "SELECT at, app, actor, action, case_id, referral_id FROM audit"
            " WHERE (? IS NULL OR case_id = ?) ORDER BY seq",
            (case_id, case_id),
        )
        return [r | {"at": iso(r["at"])} for r in rows]
