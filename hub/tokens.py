"""Coordinator tokens: shown once, stored only as a SHA-256 hash.

A token is 32 random bytes, so a plain hash is enough: there is nothing to
guess that a slow hash would protect.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import sqlite_utils

from hub.errors import InvalidInputError
from hub.storage.db import write
from hub.storage.sites import audit

ROLES = frozenset({"coordinator"})
PREFIX = "mbeh_"


@dataclass(frozen=True)
class TokenInfo:
    role: str
    org: str | None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_token(
    db: sqlite_utils.Database, role: str, org: str | None, now: int, secret: bytes
) -> str:
    """Store the hash of a new token and return the token (the only time it is shown)."""
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}; known roles: {', '.join(sorted(ROLES))}")
    if org is not None and not 0 < len(org.strip()) <= 200:
        raise InvalidInputError("--org must be 1 to 200 characters")
    if len(secret) < 32:
        raise InvalidInputError("a token needs 32 random bytes")
    token = PREFIX + base64.urlsafe_b64encode(secret).decode().rstrip("=")
    with write(db):
        db.execute(
            "INSERT INTO tokens (token_hash, role, org, created) VALUES (?, ?, ?, ?)",
            (token_hash(token), role, org, now),
        )
        audit(db, now, "operator", "token.create", role, org or "")
    return token


def check_token(db: sqlite_utils.Database, token: str) -> TokenInfo | None:
    """The role and organisation of a valid, unrevoked token, else None."""
    row = db.execute(
        "SELECT role, org FROM tokens WHERE token_hash = ? AND revoked IS NULL",
        (token_hash(token),),
    ).fetchone()
    return TokenInfo(role=row[0], org=row[1]) if row else None
