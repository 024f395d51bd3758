"""HTTP handlers of the node-facing API (docs/hub-api.md)."""

from __future__ import annotations

import base64
import contextlib
import re
import sqlite3
from collections.abc import Callable
from typing import TypeVar

import msgspec
import structlog
from aiohttp import WSMsgType, web

from hub import audit_heads, relay
from hub.auth import (
    NonceMemory,
    Prechecked,
    SignedCall,
    authenticate,
    precheck,
    record_nonce,
    verify_body,
)
from hub.context import ANNOUNCER, DB, DEPS, KEYS, METRICS, NONCES, PUBLISHER, PUSH, SETTINGS
from hub.directory import latest, latest_version
from hub.enrollment import enroll
from hub.errors import Problem
from hub.problems import from_protocol
from hub.push import directory_frame
from hub.rotation import MAX_ROTATION_BODY, rotate
from hub.settings import HubSettings
from hub.sites import revoked_among
from hub.storage.engine import Db
from hub.storage.integrity import is_corruption
from protocol import SUPPORTED_VERSIONS, hub_api
from protocol.documents import MAX_AUDIT_HEAD
from protocol.errors import ProtocolError
from protocol.hub_api import ProblemKind
from support.offload import decode_off_loop

MSGPACK = hub_api.MSGPACK
T = TypeVar("T")
MAX_ENROLL_BODY = 8192
# The body limit of the signed GET routes: they take none (the node signs an empty one).
NO_BODY = 0
_DIGITS = re.compile(r"[0-9]{1,15}")
log = structlog.get_logger()


def _now(request: web.Request) -> int:
    return request.app[DEPS].clock.now()


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass `limit`."""
    too_large = Problem(ProblemKind.TOO_LARGE, 413, f"the request body is at most {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def _precheck(request: web.Request) -> Prechecked:
    """Headers, node and clock, before a byte of the body is read (hub/auth.py)."""
    app = request.app
    return await app[DB].read(precheck, app[SETTINGS], request.headers, _now(request))


async def authenticated(request: web.Request, max_body: int | None = None) -> tuple[str, bytes]:
    """Check the headers, read the body (bounded), check the signature; return (node id, body).

    Public so that other parts of the hub (statistics) authenticate the same way.
    """
    settings = request.app[SETTINGS]
    await _precheck(request)
    body = await read_bounded(request, settings.relay.max_body if max_body is None else max_body)
    # A full disk does not refuse it: the nonce is then held in memory (hub/auth.py).
    app = request.app
    node = await app[DB].run(authenticate, settings, _call(request, body), app[NONCES])
    return node, body


async def authenticated_job(
    request: web.Request, max_body: int, work: Callable[[Db, str, SignedCall], T]
) -> tuple[str, T]:
    """`authenticated` and the request's work in one hop to the database thread.

    The signature check (with its nonce) and `work(db, node, call)` run in one
    job, in that order: the writer thread may be busy with an upload's fsync,
    and a request waits behind it once, not twice (issue 11). A request without
    a body (`max_body` 0) has nothing to refuse unread, so its header checks
    run in the same job too; one with a body gets them first, on the reader.
    """
    app = request.app
    settings = app[SETTINGS]
    if max_body:
        await _precheck(request)
    body = await read_bounded(request, max_body)
    call = _call(request, body)
    nonces = app[NONCES]

    def job(db: Db) -> tuple[str, T]:
        if not max_body:
            precheck(db, settings, call.headers, call.now)
        node = authenticate(db, settings, call, nonces)
        return node, work(db, node, call)

    return await app[DB].run(job)


def _call(request: web.Request, body: bytes) -> SignedCall:
    return SignedCall(request.method, request.raw_path, body, request.headers, _now(request))


def _upload_job(
    db: Db,
    settings: HubSettings,
    pre: Prechecked,
    now: int,
    batch: list[relay.Incoming],
    nonces: NonceMemory,
) -> tuple[str, relay.UploadResult]:
    """Record the nonce and queue, inside the durable transaction `DbWorker.run_durable`
    shares with the uploads waiting at the same time (group commit: one fsync for
    all of them, each answered after it). The signature was checked (`verify_body`)
    before the batch was decoded. A refusal (quota, replay) undoes this upload's
    writes only; on a full disk nothing is stored and the DbWorker answers
    `storage-full`."""
    node = record_nonce(db, pre, nonces)
    return node, relay.queue_batch(db, settings, node, batch, now)


def _decode(body: bytes, kind: type[T], what: str, limits: hub_api.BodyLimits) -> T:
    """A msgpack request body as its contract type; a problem naming the field if not."""
    try:
        return hub_api.decode_msgpack(body, kind, what, limits.max_bytes, limits.max_items)
    except ProtocolError as exc:
        raise from_protocol(exc, what) from None


def _decode_upload(body: bytes, max_batch: int, limits: hub_api.BodyLimits) -> list[relay.Incoming]:
    """An upload's envelopes, decoded (outer layer) and hashed; a problem if any is not."""
    blobs = _decode(body, hub_api.UploadRequest, "upload", limits).envelopes
    if len(blobs) > max_batch:
        raise Problem(ProblemKind.TOO_LARGE, 413, f"at most {max_batch} envelopes per upload")
    return relay.decode_batch(blobs)


def _verify_and_decode(
    pre: Prechecked,
    call: SignedCall,
    settings: HubSettings,
    max_batch: int,
    limits: hub_api.BodyLimits,
) -> list[relay.Incoming]:
    """The signature, then the envelopes: a forged upload costs a hash, not a decode."""
    verify_body(pre, call, settings)
    return _decode_upload(call.body, max_batch, limits)


def _json(body: msgspec.Struct) -> web.Response:
    return web.Response(body=hub_api.encode_json(body), content_type="application/json")


async def info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    public = request.app[KEYS].public
    return _json(
        hub_api.Info(
            region=settings.region,
            versions=sorted(SUPPORTED_VERSIONS),
            hub_keys=hub_api.InfoKeys(
                sign=base64.b64encode(public.sign).decode(),
                enc=base64.b64encode(public.encrypt).decode(),
            ),
            fingerprint=public.fingerprint(),
        )
    )


async def enroll_node(request: web.Request) -> web.Response:
    body = await read_bounded(request, MAX_ENROLL_BODY)
    app = request.app
    node_id, answer = await app[DB].run(enroll, app[KEYS], app[SETTINGS], body, _now(request))
    log.info("site.enrolled", node=node_id)
    # The version listing it follows at once (or within directory.publish_interval),
    # and is announced, so the others do not wait for their next hourly refresh.
    app[PUBLISHER].due(node_id)
    return web.Response(body=answer, content_type=MSGPACK)


async def rotate_keys(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_ROTATION_BODY:
        raise Problem(
            ProblemKind.TOO_LARGE, 413, f"a key rotation is at most {MAX_ROTATION_BODY} bytes"
        )
    await _precheck(request)
    body = await read_bounded(request, MAX_ROTATION_BODY)
    app = request.app
    done = await app[DB].run(rotate, app[KEYS], app[SETTINGS], _call(request, body))
    log.info("site.rotated", node=done.node_id, replay=done.replay, until=done.previous_until)
    # Senders must seal to the new keys as soon as possible: announce at once.
    await app[ANNOUNCER].check()
    return web.Response(body=done.answer(), content_type=MSGPACK)


async def put_audit_head(request: web.Request) -> web.Response:
    """POST /v1/audit/head: keep the node's newest signed audit chain head (hub/audit_heads.py)."""
    if request.content_length is not None and request.content_length > MAX_AUDIT_HEAD:
        raise Problem(
            ProblemKind.TOO_LARGE, 413, f"an audit head is at most {MAX_AUDIT_HEAD} bytes"
        )
    await _precheck(request)
    body = await read_bounded(request, MAX_AUDIT_HEAD)
    app = request.app
    node, answer = await app[DB].run(audit_heads.put_head, app[SETTINGS], _call(request, body))
    log.info("audit.head_stored", node=node)
    return _json(answer)


async def get_audit_head(request: web.Request) -> web.Response:
    """GET /v1/audit/head: the node's own newest head, as it signed it."""
    node, _ = await authenticated(request, NO_BODY)
    doc = await request.app[DB].run(audit_heads.get_head, node)
    if doc is None:
        raise Problem(ProblemKind.NOT_FOUND, 404, "the hub holds no audit head of this node")
    return web.Response(body=doc, content_type=MSGPACK, headers={"Cache-Control": "no-store"})


async def get_directory(request: web.Request) -> web.Response:
    await authenticated(request, NO_BODY)
    current = await request.app[DB].run(latest)
    if current is None:
        raise Problem(ProblemKind.NOT_FOUND, 404, "the hub has not published a directory yet")
    headers = {"ETag": current.etag, "Cache-Control": "no-cache"}
    if current.etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    return web.Response(body=current.data, content_type="application/octet-stream", headers=headers)


async def upload(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    limits = hub_api.upload_limits(settings.relay.max_batch, settings.relay.max_body)
    pre = await _precheck(request)
    body = await read_bounded(request, limits.max_bytes)
    call = _call(request, body)
    # The nonce is recorded by the transaction that queues (record_nonce).
    # Hashing and decoding a large body run in a worker thread, not on the loop
    # (support/offload.py), both in one hop; they overlap with the writer
    # thread's fsync of other uploads.
    batch = await decode_off_loop(
        len(body), _verify_and_decode, pre, call, settings, settings.relay.max_batch, limits
    )
    node, result = await request.app[DB].run_durable(
        _upload_job, settings, pre, call.now, batch, request.app[NONCES]
    )
    log.info(
        "relay.stored", node=node, accepted=len(result.accepted), rejected=len(result.rejected)
    )
    await request.app[PUSH].notify(result.recipients)
    return _json(hub_api.UploadAnswer(accepted=result.accepted, rejected=result.rejected))


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not _DIGITS.fullmatch(raw) or not lo <= int(raw) <= hi:
        raise Problem(
            ProblemKind.MALFORMED, 400, f"query parameter {name} must be an integer {lo}..{hi}"
        )
    return int(raw)


async def inbox(request: web.Request) -> web.Response:
    app = request.app
    relay_settings = app[SETTINGS].relay
    notices = relay.Notices(app[KEYS], app[SETTINGS], app[DEPS].random)

    def fetch(db: Db, node: str, call: SignedCall) -> relay.Fetched:
        after = _int_param(request, "after", 0, 0, 2**62)
        # A larger limit than the hub's batch bound is served in smaller pages, not refused.
        limit = min(
            _int_param(request, "limit", relay_settings.max_batch, 1, 2**31),
            relay_settings.max_batch,
        )
        return relay.fetch(
            db, node, after, limit, relay_settings.max_fetch_bytes, notices, call.now
        )

    node, fetched = await authenticated_job(request, NO_BODY, fetch)
    # Damage found on the way (docs/hub.md, "Corruption"): counted for /health
    # and /metrics, each unreadable row logged once, ids and seqs only.
    new = app[METRICS].integrity.seen(len(fetched.damaged), fetched.unreadable)
    if new:
        log.error("relay.unreadable", recipient=node, seqs=new)
    if fetched.notified:
        await app[PUSH].notify(fetched.notified)
    return web.Response(body=hub_api.encode_msgpack(fetched.page), content_type=MSGPACK)


async def ack(request: web.Request) -> web.Response:
    limits = hub_api.ack_limits()

    def ack_ids(db: Db, node: str, call: SignedCall) -> relay.Acked:
        # Decoding (a few KiB of ids) after the signature check, as before.
        return relay.ack(db, node, _decode_ack(call.body, limits), call.now)

    node, acked = await authenticated_job(request, limits.max_bytes, ack_ids)
    if acked.failed:
        request.app[METRICS].integrity.seen(0, [], acked.failed)
        log.error("relay.ack_failed", recipient=node, failed=acked.failed)
    return _json(hub_api.AckAnswer(deleted=acked.deleted))


def _decode_ack(body: bytes, limits: hub_api.BodyLimits) -> list[str]:
    return _decode(body, hub_api.AckRequest, "ack", limits).ids


async def websocket(request: web.Request) -> web.StreamResponse:
    node, _ = await authenticated(request, NO_BODY)
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    push = request.app[PUSH]
    push.add(node, ws)
    log.info("push.connected", node=node)
    try:
        # A revoke that landed after `authenticated` but before `add` was missed
        # by the check that closed the revoked node's other sockets.
        if await request.app[DB].run(revoked_among, [node]):
            await push.disconnect_revoked([node])
            log.info("push.revoked_closed", nodes=[node])
        else:
            await _greet(request, ws, node)
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        push.remove(node, ws)
        log.info("push.disconnected", node=node)
    return ws


async def _greet(request: web.Request, ws: web.WebSocketResponse, node: str) -> None:
    """The frames a node gets on connect: mail waiting, then the newest directory version."""
    if await request.app[DB].run(relay.has_mail, node):
        await request.app[PUSH].notify([node])
    # Whatever was announced while the node was away: it compares with what it holds.
    frame = directory_frame(await request.app[DB].run(latest_version))
    with contextlib.suppress(ConnectionError):  # closed already: the loop in `websocket` ends
        await ws.send_str(frame)


async def health(request: web.Request) -> web.Response:
    """Liveness and the database's state: 503 once damage is known or while the
    database does not answer (docs/hub-api.md). Reads only what the probe and the
    checks recorded, so a load balancer's checks cost no query."""
    found = request.app[METRICS]
    integrity = found.integrity
    status = "corrupt" if integrity.corrupt else "ok" if found.reachable else "unreachable"
    database: dict[str, object] = {
        **integrity.as_json(),
        "engine": request.app[DB].engine,
        "reachable": found.reachable,
    }
    return web.json_response(
        {"status": status, "database": database}, status=200 if status == "ok" else 503
    )


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    try:
        stats = await app[DB].run(relay.queue_stats, _now(request))
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        # The queue cannot be counted; the integrity gauges still tell why.
        integrity = app[METRICS].integrity
        integrity.problems = max(integrity.problems, 1)
        stats = relay.QueueStats(depth=-1, oldest_age=-1, max_node_bytes=-1)
    text = app[METRICS].render(
        queue_depth=stats.depth,
        oldest_age=stats.oldest_age,
        max_node_bytes=stats.max_node_bytes,
        quota=app[SETTINGS].relay.max_queue_bytes_per_node,
        connected=app[PUSH].connected_nodes,
        pool=app[DB].pool_stats(),
    )
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/info", info)
    app.router.add_post("/v1/enroll", enroll_node)
    app.router.add_get("/v1/directory", get_directory)
    app.router.add_post("/v1/keys/rotate", rotate_keys)
    app.router.add_post("/v1/messages", upload)
    app.router.add_get("/v1/inbox", inbox)
    app.router.add_post("/v1/audit/head", put_audit_head)
    app.router.add_get("/v1/audit/head", get_audit_head)
    app.router.add_post("/v1/inbox/ack", ack)
    app.router.add_get("/v1/ws", websocket)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
