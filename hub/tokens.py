"""Coordinator tokens: shown once, stored only as a SHA-256 hash.

A token is 32 random bytes, so a plain hash is enough: there is nothing to
guess that a slow hash would protect.

A token's id, for `mbe-hub token list|revoke`, is the first 12 hex digits of
that hash: it names the token without revealing it, needs no extra column,
and the operator who still holds a token can compute it (`revoke` takes the
token itself too). Revoking marks the row and deletes the token's dashboard
sessions in the same transaction, so both stop working at the next request.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from dataclasses import dataclass

from hub.errors import InvalidInputError, NotFoundError
from hub.storage.db import write
from hub.storage.engine import Db
from hub.storage.sites import audit

ROLES = frozenset({"coordinator"})
PREFIX = "mbeh_"
ID_LENGTH = 12
MAX_LABEL = 80


@dataclass(frozen=True)
class TokenInfo:
    role: str
    org: str | None


@dataclass(frozen=True)
class TokenRecord:
    """What `token list` shows: never the token, only its id."""

    token_id: str
    role: str
    org: str | None
    created: int
    revoked: int | None
    label: str | None = None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_id(digest: bytes) -> str:
    return digest.hex()[:ID_LENGTH]


def create_token(
    db: Db,
    role: str,
    org: str | None,
    now: int,
    secret: bytes,
    label: str | None = None,
) -> str:
    """Store the hash of a new token and return the token (the only time it is shown)."""
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}; known roles: {', '.join(sorted(ROLES))}")
    if org is not None:
        _check_org_text(org)
    if label is not None and (
        not 0 < len(label.strip()) <= MAX_LABEL
        or any(unicodedata.category(c) in ("Cc", "Cs") for c in label)
    ):
        raise InvalidInputError(f"--label must be 1 to {MAX_LABEL} printable characters")
    if len(secret) < 32:
        raise InvalidInputError("a token needs 32 random bytes")
    token = PREFIX + base64.urlsafe_b64encode(secret).decode().rstrip("=")
    with write(db):
        db.execute(
            "INSERT INTO tokens (token_hash, role, org, created, label) VALUES (?, ?, ?, ?, ?)",
            (token_hash(token), role, org, now, label),
        )
        audit(db, now, "operator", "token.create", role, org or "")
    return token


def _check_org_text(org: str) -> None:
    if not 0 < len(org.strip()) <= 200 or any(unicodedata.category(c) in ("Cc", "Cs") for c in org):
        raise InvalidInputError("--org must be 1 to 200 printable characters")


def require_known_org(db: Db, org: str) -> None:
    """Refuse an organisation no site belongs to: its token would see nothing.

    Organisations are spelled as in `site add --org`; the error lists them.
    """
    _check_org_text(org)
    known = sorted({r[0] for r in db.execute("SELECT DISTINCT org FROM sites")})
    if org in known:
        return
    if not known:
        raise InvalidInputError(
            f"no site belongs to organisation {org!r} (no site added yet); "
            "add its offices with `mbe-hub site add --org` first"
        )
    close = [k for k in known if k.casefold() == org.casefold()]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InvalidInputError(
        f"no site belongs to organisation {org!r}{hint} known organisations: "
        + ", ".join(repr(k) for k in known)
    )


def check_token(db: Db, token: str) -> TokenInfo | None:
    """The role and organisation of a valid, unrevoked token, else None."""
    row = db.execute(
        "SELECT role, org FROM tokens WHERE token_hash = ? AND revoked IS NULL",
        (token_hash(token),),
    ).fetchone()
    return TokenInfo(role=row[0], org=row[1]) if row else None


def list_tokens(db: Db) -> list[TokenRecord]:
    """Every token, oldest first, by id; the tokens themselves are not stored."""
    return [
        TokenRecord(token_id(bytes(r[0])), r[1], r[2], r[3], r[4], r[5])
        for r in db.execute(
            "SELECT token_hash, role, org, created, revoked, label FROM tokens "
            "ORDER BY created, token_hash"
        ).fetchall()
    ]


def revoke_token(db: Db, name: str, now: int) -> tuple[TokenRecord, bool]:
    """Revoke the token with id (or the token itself) `name`; return it and whether it was live.

    Its dashboard sessions are deleted in the same transaction.
    """
    with write(db):
        digest = _find(db, name.strip())
        row = db.execute(
            "SELECT role, org, created, revoked FROM tokens WHERE token_hash = ?", (digest,)
        ).fetchone()
        was_live = row[3] is None
        if was_live:
            db.execute("UPDATE tokens SET revoked = ? WHERE token_hash = ?", (now, digest))
            audit(db, now, "operator", "token.revoke", row[0], token_id(digest))
        db.execute("DELETE FROM coordinator_sessions WHERE token_hash = ?", (digest,))
        revoked = now if was_live else row[3]
    return TokenRecord(token_id(digest), row[0], row[1], row[2], revoked), was_live


def _find(db: Db, name: str) -> bytes:
    if name.startswith(PREFIX):
        digest = token_hash(name)
        if db.execute("SELECT 1 FROM tokens WHERE token_hash = ?", (digest,)).fetchone():
            return digest
        raise NotFoundError("no such token")
    if len(name) != ID_LENGTH or any(c not in "0123456789abcdef" for c in name):
        raise InvalidInputError(
            f"a token id is {ID_LENGTH} lowercase hex digits as `mbe-hub token list` shows"
        )
    matches = [
        bytes(r[0])
        for r in db.execute("SELECT token_hash FROM tokens").fetchall()
        if token_id(bytes(r[0])) == name
    ]
    if not matches:
        raise NotFoundError(f"no token with id {name}")
    if len(matches) > 1:
        raise InvalidInputError(f"token id {name} is ambiguous; pass the token itself")
    return matches[0]
