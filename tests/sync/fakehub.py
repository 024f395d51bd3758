"""A small, faithful stand-in for the hub, implementing docs/hub-api.md in memory.

It checks request signatures, clock skew and nonces exactly as the contract
says, answers refusals as application/problem+json with the same problem kinds
as hub/, relays envelopes between enrolled nodes, and pushes "mail" frames.
Knobs for failure tests: `outage` (every request answers 503), `impostor`
(a man in the middle presenting and signing with other keys), and
`directory_override` (serve these bytes as the directory) and
`lose_enroll_answers` (commit that many enrollments, then answer 502 as a
proxy whose connection to the hub broke), and `inbox_body` (answer every
inbox fetch with these bytes, e.g. a hostile page). Like hub/, it answers a repeated
enrollment with a used code and the same keys again (idempotent), so a node
whose answer was lost can simply run `mbe-node enroll` again.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from protocol import hub_api
from protocol.documents import AuditHead, Directory, NodeCertificate, OfficeEntry
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import Envelope
from protocol.errors import ProtocolError
from protocol.hub_api import ProblemKind
from protocol.keys import PrivateKeys, PublicKeys
from protocol.requests import NonceCache, parse_request_headers, verify_request

DAY = 24 * 3600
NODE = web.RequestKey("node", str)
# The push sockets one served app holds: stopping it closes those, not another's
# (several servers of one FakeHub are several processes of one hub).
APP_SOCKETS = web.AppKey("fakehub_sockets", set[web.WebSocketResponse])
T = TypeVar("T")


def fixed_keys(n: int) -> PrivateKeys:
    """Deterministic keys for tests; `n` tells parties apart."""
    return PrivateKeys(sign_seed=bytes([n]) * 32, encrypt_secret=bytes([n + 100]) * 32)


class Problem(Exception):
    def __init__(self, kind: ProblemKind, status: int, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.status, self.detail = kind, status, detail

    def response(self) -> web.Response:
        body = hub_api.ProblemDocument(
            type=hub_api.problem_type(self.kind),
            title=self.kind,
            status=self.status,
            detail=self.detail,
        )
        return web.Response(
            status=self.status,
            body=hub_api.encode_json(body),
            content_type=hub_api.PROBLEM_CONTENT_TYPE,
        )


def _json(body: msgspec.Struct) -> web.Response:
    return web.Response(body=hub_api.encode_json(body), content_type="application/json")


def _msgpack(body: msgspec.Struct) -> web.Response:
    return web.Response(body=hub_api.encode_msgpack(body), content_type=hub_api.MSGPACK)


@dataclass
class Site:
    node_id: str
    name: str
    org: str
    keys: PublicKeys | None = None
    status: str = "active"
    previous_keys: PublicKeys | None = None
    previous_until: int = 0


@dataclass
class Code:
    verifier: bytes
    node_id: str
    expires: int
    used: bool = False


@dataclass
class FakeHub:
    clock: Callable[[], float] = time.time
    keys: PrivateKeys = field(default_factory=lambda: fixed_keys(1))
    region: str = "Mittelfranken"
    events: list[tuple[Any, ...]] = field(default_factory=list)
    outage: bool = False
    # The hub's disk is full: uploads answer 507 storage-full with Retry-After
    # (hub/errors.py StorageFull); inbox, ack, directory and push go on.
    storage_full: bool = False
    impostor: PrivateKeys | None = None
    directory_override: bytes | None = None
    directory_ttl: int = 7 * DAY
    # Refuse uploads with more envelopes than this as too large (413).
    max_batch: int | None = None
    sites: dict[str, Site] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    # recipient -> msg id -> (seq, envelope); plus every stored id for idempotency
    queues: dict[str, dict[str, tuple[int, bytes]]] = field(default_factory=dict)
    stored: dict[str, bytes] = field(default_factory=dict)
    stats: list[bytes] = field(default_factory=list)
    # node id -> the newest signed audit-head document (POST /v1/audit/head)
    audit_heads: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    sockets: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)
    seq: int = 0
    directory_version: int = 0
    directory_data: bytes = b""
    nonces: NonceCache = field(default_factory=NonceCache)
    # Send {"type": "directory", "version": N} on connect, as the real hub does.
    announce_on_connect: bool = True
    lose_enroll_answers: int = 0
    # Serve these bytes as every inbox page (a hostile or broken hub).
    inbox_body: bytes | None = None

    # --- administration (what `mbe-hub site add/revoke` does)

    @property
    def presented(self) -> PrivateKeys:
        return self.impostor or self.keys

    def now(self) -> int:
        return int(self.clock())

    def add_site(self, node_id: str, name: str = "Beratung", org: str = "Caritas") -> str:
        """Register a site and return its one-time enrollment code text."""
        self.sites[node_id] = Site(node_id, name, org)
        code = EnrollmentCode.create(self.keys.public, secret=len(self.codes) + 12345)
        self.codes[code.lookup_id()] = Code(code.verifier(), node_id, self.now() + DAY)
        return code.text()

    def register(self, node_id: str, keys: PublicKeys, name: str = "Beratung") -> None:
        """An already enrolled site (skips the code dance)."""
        self.sites[node_id] = Site(node_id, name, "AWO", keys)
        self.publish()

    def revoke(self, node_id: str) -> None:
        self.sites[node_id].status = "revoked"
        self.publish()

    def publish(self) -> bytes:
        self.directory_version += 1
        offices = tuple(
            OfficeEntry(
                node_id=s.node_id,
                name=s.name,
                org=s.org,
                services=("mbe",),
                languages=("de", "ar"),
                area="Nürnberg",
                keys=s.keys,
                status=s.status,
                previous_keys=s.previous_keys,
                previous_until=s.previous_until,
            )
            for s in self.sites.values()
            if s.keys is not None
        )
        now = self.now()
        self.directory_data = Directory(
            version=self.directory_version,
            issued=now,
            expires=now + self.directory_ttl,
            region=self.region,
            offices=offices,
        ).sign(self.presented)
        return self.directory_data

    async def deliver(self, recipient: str, envelope: bytes, msg_id: str) -> None:
        """Queue an envelope for `recipient` as if some node uploaded it."""
        self.seq += 1
        self.queues.setdefault(recipient, {})[msg_id] = (self.seq, envelope)
        await self.notify(recipient)

    async def notify(self, node_id: str) -> None:
        for ws in list(self.sockets.get(node_id, ())):
            await ws.send_str(hub_api.push_frame(hub_api.MailFrame()))

    async def announce(self, version: int | None = None) -> None:
        """Send every connected node a directory frame (the current version by default)."""
        frame = hub_api.push_frame(
            hub_api.DirectoryFrame(version=version or self.directory_version)
        )
        for group in list(self.sockets.values()):
            for ws in list(group):
                await ws.send_str(frame)

    def pending(self, node_id: str) -> list[str]:
        return list(self.queues.get(node_id, {}))

    # --- HTTP

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v1/info", self.info)
        app.router.add_post("/v1/enroll", self.enroll)
        app.router.add_get("/v1/directory", self.directory)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_get("/v1/inbox", self.inbox)
        app.router.add_post("/v1/inbox/ack", self.ack)
        app.router.add_post("/v1/stats", self.post_stats)
        app.router.add_post("/v1/audit/head", self.post_audit_head)
        app.router.add_get("/v1/audit/head", self.get_audit_head)
        app.router.add_get("/v1/ws", self.ws)
        app.router.add_get("/health", self.health)
        app[APP_SOCKETS] = set()
        app.on_shutdown.append(self._close_sockets)
        return app

    async def _close_sockets(self, app: web.Application) -> None:
        held = app[APP_SOCKETS]
        for ws in list(held):
            await ws.close()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self.outage:
            return web.Response(status=503, text="maintenance")
        try:
            if request.path not in ("/v1/info", "/v1/enroll", "/health"):
                request[NODE] = await self._authenticate(request)
            return await handler(request)  # type: ignore[no-any-return]
        except Problem as p:
            return p.response()

    async def _authenticate(self, request: web.Request) -> str:
        try:
            signed = parse_request_headers(request.headers)
        except ProtocolError as exc:
            raise Problem(ProblemKind.MALFORMED, 400, str(exc)) from None
        site = self.sites.get(signed.node_id)
        if site is None or site.keys is None:
            raise Problem(ProblemKind.UNKNOWN_NODE, 401, "this node is not enrolled")
        if site.status == "revoked":
            raise Problem(ProblemKind.REVOKED_NODE, 403, "this node has been revoked")
        body = await request.read()
        try:
            verify_request(request.method, request.path_qs, body, signed, site.keys, now=self.now())
            self.nonces.check_and_remember(
                signed.node_id, signed.nonce, signed.timestamp, self.now()
            )
        except ProtocolError as exc:
            raise Problem(ProblemKind(exc.code), 401, str(exc)) from None
        return signed.node_id

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def info(self, request: web.Request) -> web.Response:
        pub = self.presented.public
        return _json(
            hub_api.Info(
                region=self.region,
                versions=[1],
                hub_keys=hub_api.InfoKeys(
                    sign=base64.b64encode(pub.sign).decode(),
                    enc=base64.b64encode(pub.encrypt).decode(),
                ),
                fingerprint=pub.fingerprint(),
            )
        )

    async def enroll(self, request: web.Request) -> web.Response:
        try:
            req = EnrollmentRequest.decode(await request.read())
        except ProtocolError as exc:
            raise Problem(ProblemKind.MALFORMED, 400, str(exc)) from None
        code = self.codes.get(req.lookup_id)
        if code is None:
            raise Problem(
                ProblemKind.UNKNOWN_CODE, 404, "no such enrollment code; check it for typos"
            )
        try:
            req.verify(code.verifier)
        except ProtocolError:
            raise Problem(
                ProblemKind.BAD_SIGNATURE, 403, "the enrollment proof does not match"
            ) from None
        site = self.sites[code.node_id]
        if code.used and site.keys != req.keys:
            raise Problem(ProblemKind.USED_CODE, 409, "this enrollment code was already used")
        if not code.used and code.expires <= self.now():
            raise Problem(ProblemKind.EXPIRED_CODE, 410, "this enrollment code has expired")
        code.used = True
        site.keys = req.keys
        now = self.now()
        cert = NodeCertificate(
            node_id=site.node_id,
            name=site.name,
            org=site.org,
            keys=req.keys,
            issued=now,
            expires=now + 365 * DAY,
        ).sign(self.presented)
        directory = self.publish()
        pub = self.presented.public
        answer = hub_api.EnrollAnswer(
            node_id=site.node_id,
            cert=cert,
            hub_keys=hub_api.RawKeys(sign=pub.sign, enc=pub.encrypt),
            directory=directory,
        )
        if self.lose_enroll_answers > 0:
            self.lose_enroll_answers -= 1
            return web.Response(status=502, text="bad gateway")
        return _msgpack(answer)

    async def directory(self, request: web.Request) -> web.Response:
        data = self.directory_override or self.directory_data
        etag = f'"v{self.directory_version}"'
        if self.directory_override is None and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=data, content_type="application/octet-stream", headers={"ETag": etag}
        )

    async def messages(self, request: web.Request) -> web.Response:
        node = request[NODE]
        if self.storage_full:
            refused = Problem(ProblemKind.STORAGE_FULL, 507, "the hub's disk is full").response()
            refused.headers["Retry-After"] = "30"
            return refused
        upload = self._decode(await request.read(), hub_api.UploadRequest, "upload")
        envelopes = upload.envelopes
        if self.max_batch is not None and len(envelopes) > self.max_batch:
            raise Problem(ProblemKind.TOO_LARGE, 413, "request body too large")
        accepted: list[str] = []
        rejected: list[hub_api.RejectedEnvelope] = []
        touched: set[str] = set()
        for data in envelopes:
            try:
                env = Envelope.decode(data)
            except ProtocolError as exc:
                raise Problem(ProblemKind(exc.code), 400, f"envelope: {exc}") from None
            problem = self._check_upload(node, env, data)
            if problem is not None:
                kind, detail = problem
                rejected.append(
                    hub_api.RejectedEnvelope(
                        id=env.msg_id, type=hub_api.problem_type(kind), detail=detail
                    )
                )
                continue
            if env.msg_id not in self.stored:
                self.stored[env.msg_id] = data
                self.seq += 1
                self.queues.setdefault(env.recipient, {})[env.msg_id] = (self.seq, data)
                touched.add(env.recipient)
            accepted.append(env.msg_id)
            self.events.append(("hub_stored", env.msg_id))
        for recipient in touched:
            await self.notify(recipient)
        return _json(hub_api.UploadAnswer(accepted=accepted, rejected=rejected))

    def _check_upload(
        self, node: str, env: Envelope, data: bytes
    ) -> tuple[ProblemKind, str] | None:
        if env.sender != node:
            return (ProblemKind.FORBIDDEN, "the envelope names another sender")
        target = self.sites.get(env.recipient)
        if target is None or target.keys is None or target.status != "active":
            return (ProblemKind.UNKNOWN_RECIPIENT, "the recipient is not an active enrolled node")
        if env.expires <= self.now():
            return (ProblemKind.EXPIRED, "the envelope has expired")
        if env.msg_id in self.stored and self.stored[env.msg_id] != data:
            return (ProblemKind.CONFLICT, "another envelope with this id was stored")
        return None

    @staticmethod
    def _decode(body: bytes, kind: type[T], what: str) -> T:
        try:
            return hub_api.decode_msgpack(body, kind, what, 64 << 20)
        except ProtocolError as exc:
            raise Problem(ProblemKind.MALFORMED, 400, str(exc)) from None

    async def inbox(self, request: web.Request) -> web.Response:
        node = request[NODE]
        if self.inbox_body is not None:
            return web.Response(body=self.inbox_body, content_type=hub_api.MSGPACK)
        try:
            after = int(request.query.get("after", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise Problem(ProblemKind.MALFORMED, 400, "after and limit must be integers") from None
        queue = sorted(
            (seq, msg_id, env)
            for msg_id, (seq, env) in self.queues.get(node, {}).items()
            if seq > after
        )
        page = queue[:limit]
        return _msgpack(
            hub_api.InboxPage(
                messages=[hub_api.InboxMessage(seq=s, id=i, envelope=e) for s, i, e in page],
                next=page[-1][0] if page else after,
                more=len(queue) > limit,
            )
        )

    async def ack(self, request: web.Request) -> web.Response:
        node = request[NODE]
        ack = self._decode(await request.read(), hub_api.AckRequest, "ack")
        deleted = 0
        for msg_id in ack.ids:
            self.events.append(("ack", msg_id))
            if self.queues.get(node, {}).pop(msg_id, None) is not None:
                deleted += 1
        return _json(hub_api.AckAnswer(deleted=deleted))

    async def post_stats(self, request: web.Request) -> web.Response:
        self.stats.append(await request.read())
        return _json(hub_api.StatsAnswer(period="2026-11", revision=len(self.stats), stored=True))

    async def post_audit_head(self, request: web.Request) -> web.Response:
        """Like hub/audit_heads.py: the site's key, its own node, never an older head."""
        node = request[NODE]
        site = self.sites[node]
        keys = tuple(k for k in (site.keys, site.previous_keys) if k is not None)
        try:
            head = AuditHead.verify(await request.read(), keys)
        except ProtocolError as exc:
            raise Problem(ProblemKind.BAD_SIGNATURE, 400, str(exc)) from None
        if head.node_id != node:
            raise Problem(ProblemKind.FORBIDDEN, 403, "the audit head names another node")
        held = self.audit_heads.get(node)
        if held is not None and head.at < AuditHead.verify(held, keys).at:
            raise Problem(ProblemKind.CONFLICT, 409, "the hub holds a newer audit head")
        self.audit_heads[node] = await request.read()
        return _json(hub_api.AuditHeadAnswer(at=head.at, stored=True))

    async def get_audit_head(self, request: web.Request) -> web.Response:
        held = self.audit_heads.get(request[NODE])
        if held is None:
            raise Problem(ProblemKind.NOT_FOUND, 404, "no audit head of this node")
        return web.Response(body=held, content_type=hub_api.MSGPACK)

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        node = request[NODE]
        ws = web.WebSocketResponse(heartbeat=5.0)
        await ws.prepare(request)
        self.sockets.setdefault(node, set()).add(ws)
        request.app[APP_SOCKETS].add(ws)
        try:
            if self.queues.get(node):
                await ws.send_str(hub_api.push_frame(hub_api.MailFrame()))
            if self.announce_on_connect:
                frame = hub_api.DirectoryFrame(version=self.directory_version)
                await ws.send_str(hub_api.push_frame(frame))
            async for _ in ws:
                pass
        finally:
            self.sockets[node].discard(ws)
            request.app[APP_SOCKETS].discard(ws)
        return ws
