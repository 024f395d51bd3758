"""Who is asking: coordinator tokens (API) and dashboard sessions (cookie).

A coordinator authenticates with the bearer token `mbe-hub token create
--role coordinator [--org ORG]` printed. The dashboard trades that token for a
session: a random id in an HttpOnly, SameSite=Strict cookie, of which the hub
stores only the SHA-256, with an expiry. A session dies with its token
(revocation), at logout, or when it expires.

Every coordinator route reads its caller through `coordinator()`, and every
data access takes the resulting `Coordinator`, whose `org` limits what it
sees (hub/stats/view.py applies it first).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from aiohttp import web

from hub.context import DB, DEPS, SETTINGS
from hub.errors import Problem
from hub.settings import HubSettings
from hub.storage.db import write
from hub.storage.engine import Db
from hub.storage.sites import audit
from hub.tokens import check_token, token_hash
from protocol.hub_api import ProblemKind

COOKIE = "mbe_session"
COORDINATOR = "coordinator"


@dataclass(frozen=True)
class Coordinator:
    """An authenticated coordinator; `org` set means: this organisation's offices only."""

    org: str | None


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def usable_secret(value: str, max_len: int) -> bool:
    """A token or session id worth looking up: printable ASCII of a sane length.

    Ours are always that; anything else (a header with raw latin-1 bytes, which
    arrive as lone surrogates) can match nothing, and must not reach encode().
    """
    return 0 < len(value) <= max_len and value.isascii() and value.isprintable()


def _check(db: Db, token: str) -> Coordinator | None:
    info = check_token(db, token)
    if info is None or info.role != COORDINATOR:
        return None
    return Coordinator(info.org)


def session_coordinator(db: Db, session_id: str, now: int) -> Coordinator | None:
    row = db.execute(
        "SELECT t.role, t.org FROM coordinator_sessions s "
        "JOIN tokens t ON t.token_hash = s.token_hash "
        "WHERE s.id_hash = ? AND s.expires > ? AND t.revoked IS NULL",
        (_hash(session_id), now),
    ).fetchone()
    if row is None or row[0] != COORDINATOR:
        return None
    return Coordinator(row[1])


def start_session(db: Db, token: str, session_id: str, now: int, ttl: int) -> Coordinator | None:
    """Check the token and store a session for it; None if the token is not a coordinator's."""
    who = _check(db, token)
    if who is None:
        return None
    with write(db, durable=False):
        db.execute("DELETE FROM coordinator_sessions WHERE expires <= ?", (now,))
        db.execute(
            "INSERT INTO coordinator_sessions (id_hash, token_hash, created, expires) "
            "VALUES (?, ?, ?, ?)",
            (_hash(session_id), token_hash(token), now, now + ttl),
        )
        audit(db, now, COORDINATOR, "session.start", who.org or "", "")
    return who


def end_session(db: Db, session_id: str) -> None:
    with write(db, durable=False):
        db.execute("DELETE FROM coordinator_sessions WHERE id_hash = ?", (_hash(session_id),))


async def optional_coordinator(request: web.Request) -> Coordinator | None:
    """The caller by bearer token, else by session cookie; None if neither is valid."""
    app = request.app
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not usable_secret(token.strip(), 200):
            return None
        return await app[DB].run(_check, token.strip())
    session_id = request.cookies.get(COOKIE)
    if session_id is None or not usable_secret(session_id, 100):
        return None
    return await app[DB].run(session_coordinator, session_id, app[DEPS].clock.now())


async def coordinator(request: web.Request) -> Coordinator:
    """The authenticated coordinator, or a 401 problem."""
    who = await optional_coordinator(request)
    if who is None:
        raise Problem(
            ProblemKind.UNAUTHORIZED,
            401,
            "a coordinator token (Authorization: Bearer ...) or dashboard session is required",
        )
    return who


def new_session_id(request: web.Request) -> str:
    return base64.urlsafe_b64encode(request.app[DEPS].random.token_bytes(32)).decode().rstrip("=")


def cookie_secure(settings: HubSettings) -> bool:
    """`auto`: Secure when the hub's public URL is https (it sits behind TLS)."""
    mode = settings.stats.secure_cookie
    return mode == "always" or (mode == "auto" and settings.public_url.startswith("https://"))


def set_session_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.stats.session_ttl,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(settings),
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(
        COOKIE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request.app[SETTINGS]),
    )
