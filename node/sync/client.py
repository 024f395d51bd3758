"""HTTP client for the hub API (docs/hub-api.md), with typed results.

Every request except `info` and `enroll` is signed with the node key
(`protocol.requests.sign_request`); the signature covers the exact path and
query string sent, so URLs are built here from integers and fixed paths and
passed to aiohttp pre-encoded. Answers are parsed strictly: anything that does
not follow the contract raises `HubResponseError` instead of travelling on
half-valid. Bodies are read with a size cap before decoding.

Error mapping: connection errors, timeouts, 5xx and 429 are `HubUnreachable`
(transient, retry later; for an answer with its status, its problem kind in
the message, e.g. `storage-full` for 507, and its `Retry-After`); any other
4xx is `HubRefused` with the problem type of its `application/problem+json` body.

Several hub URLs (node/sync/hub_urls.py): a request that gets no answer at
one URL (connection refused or reset, timeout, DNS failure, or 502/503/504 from
a proxy whose hub process is gone) is sent again to the next URL, each URL at
most once; any other answer, 4xx and 500 included, is the hub's and is final.
Every request the node sends is safe to repeat: uploads and acks are
idempotent by message id, a statistics report by (period, revision), an audit
head by its time, a key rotation and an enrollment code are answered again
for the same keys, and the rest are reads. A signed request is signed again
for each URL with a fresh timestamp and nonce: the signature covers method,
path, body, time and nonce (not the host), but the hub processes share one
nonce table, and the first try may have reached it before its answer was lost.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from node.sync.errors import (
    EnrollmentInvalid,
    HubRefused,
    HubResponseError,
    HubUnreachable,
)
from node.sync.hub_urls import BadHubUrl, HubUrls, normalize_hub_url, parse_hub_urls
from protocol import hub_api
from protocol.documents import MAX_AUDIT_HEAD, MAX_DIRECTORY_BYTES, Directory, NodeCertificate
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.errors import ProtocolError
from protocol.ids import NODE_ID
from protocol.keys import PrivateKeys, PublicKeys
from protocol.requests import sign_request
from support.clock import Deps, nonce
from support.offload import decode_off_loop

MSGPACK = hub_api.MSGPACK
T = TypeVar("T")
_MAX_JSON = 1 << 20
_MAX_DETAIL = 300


__all__ = [
    "BadHubUrl",
    "EnrollmentResult",
    "HubClient",
    "HubInfo",
    "RotationResult",
    "normalize_hub_url",
]
# Statuses of a proxy (or a load balancer) in front of a hub process that is
# down or overloaded: no answer from the hub, so the next URL is asked.
NO_ANSWER = frozenset({502, 503, 504})


@dataclass(frozen=True)
class HubInfo:
    region: str
    versions: tuple[int, ...]
    hub_keys: PublicKeys
    fingerprint: str


@dataclass(frozen=True)
class EnrollmentResult:
    """The verified answer to POST /v1/enroll."""

    node_id: str
    hub_keys: PublicKeys
    certificate: NodeCertificate
    certificate_bytes: bytes
    directory: Directory
    directory_bytes: bytes


@dataclass(frozen=True)
class RotationResult:
    """The verified answer to POST /v1/keys/rotate."""

    certificate: NodeCertificate
    certificate_bytes: bytes
    previous_until: int
    directory_version: int


@dataclass(frozen=True)
class _Answer:
    url: str
    status: int
    headers: Any
    body: bytes


class HubClient:
    """One aiohttp session to one hub at one or more URLs. `start()` opens it,
    `close()` closes it.

    `hub_urls`: one URL, several in order of preference, or a `HubUrls` (which
    the caller may keep to see or replace the list).
    """

    def __init__(
        self,
        hub_urls: str | Sequence[str] | HubUrls,
        *,
        keys: PrivateKeys,
        node_id: str | None,
        request_timeout: float,
        deps: Deps | None = None,
    ) -> None:
        if isinstance(hub_urls, HubUrls):
            self.urls = hub_urls
        else:
            texts = [hub_urls] if isinstance(hub_urls, str) else hub_urls
            self.urls = HubUrls(parse_hub_urls(texts))
        if node_id is not None and not NODE_ID.fullmatch(node_id):
            raise ValueError("node_id is not a valid node id")
        self._keys = keys
        self._node_id = node_id
        self._timeout = request_timeout
        # Request timestamps and nonces: the process's clock and randomness.
        self._deps = deps or Deps.system()
        # This node's clock minus the hub's, in seconds, from the Date header of
        # the last answer (1 s resolution); None before the first answer.
        self.clock_offset: int | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            # No total timeout on the session: it would also cut the long-lived
            # WebSocket. Each request passes its own.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout)
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def closed(self) -> bool:
        return self._session is None

    @property
    def hub_url(self) -> str:
        """The URL in use: the one that answered last (the first before any answer)."""
        return self.urls.current

    async def __aenter__(self) -> HubClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- endpoints

    async def info(self) -> HubInfo:
        ans = await self._request("GET", "/v1/info", signed=False, limit=_MAX_JSON)
        info = self._decode_json(ans, hub_api.Info, "/v1/info answer")
        try:
            keys = PublicKeys(
                sign=base64.b64decode(info.hub_keys.sign, validate=True),
                encrypt=base64.b64decode(info.hub_keys.enc, validate=True),
            )
        except (ValueError, ProtocolError):
            raise HubResponseError(f"{ans.url}: /v1/info answer is malformed") from None
        return HubInfo(
            region=info.region,
            versions=tuple(info.versions),
            hub_keys=keys,
            fingerprint=info.fingerprint,
        )

    async def enroll(self, code: EnrollmentCode, *, now: int) -> EnrollmentResult:
        """POST /v1/enroll and verify the answer; the hub's keys are checked first."""
        body = EnrollmentRequest.create(code, self._keys).encode()
        ans = await self._request(
            "POST", "/v1/enroll", body=body, signed=False, content_type=MSGPACK, limit=4 << 20
        )
        m = self._decode_msgpack(
            ans, hub_api.EnrollAnswer, "enrollment answer", MAX_DIRECTORY_BYTES + (64 << 10)
        )
        try:
            hub_keys = PublicKeys(sign=m.hub_keys.sign, encrypt=m.hub_keys.enc)
        except ProtocolError:
            raise HubResponseError(f"{ans.url}: enrollment answer is malformed") from None
        # Nothing else in the answer is trusted before the keys match the code:
        # a man in the middle would sign its own certificate and directory.
        code.check_hub(hub_keys)
        try:
            cert = NodeCertificate.verify(m.cert, hub_keys, now=now)
        except ProtocolError as exc:
            raise EnrollmentInvalid(f"the hub's node certificate is not valid: {exc}") from None
        if cert.node_id != m.node_id or cert.keys != self._keys.public:
            raise EnrollmentInvalid("the hub's node certificate names another node or other keys")
        try:
            directory = Directory.verify(m.directory, hub_keys, now=now)
        except ProtocolError as exc:
            raise EnrollmentInvalid(f"the hub's directory is not valid: {exc}") from None
        return EnrollmentResult(
            node_id=m.node_id,
            hub_keys=hub_keys,
            certificate=cert,
            certificate_bytes=m.cert,
            directory=directory,
            directory_bytes=m.directory,
        )

    async def directory(self, etag: str | None) -> tuple[bytes, str | None] | None:
        """GET /v1/directory: (signed bytes, ETag), or None when unchanged (304).

        The bytes are not verified here; the caller holds the version to compare.
        """
        headers = {"If-None-Match": etag} if etag else {}
        ans = await self._request(
            "GET", "/v1/directory", headers=headers, ok=(200, 304), limit=MAX_DIRECTORY_BYTES
        )
        if ans.status == 304:
            return None
        return ans.body, ans.headers.get("ETag")

    async def upload(self, envelopes: Sequence[bytes]) -> hub_api.UploadAnswer:
        """POST /v1/messages; the hub answers only after a durable commit."""
        body = hub_api.encode_msgpack(hub_api.UploadRequest(envelopes=list(envelopes)))
        ans = await self._request(
            "POST", "/v1/messages", body=body, content_type=MSGPACK, limit=_MAX_JSON
        )
        return self._decode_json(ans, hub_api.UploadAnswer, "upload answer")

    async def fetch_inbox(self, after: int, limit: int) -> hub_api.InboxPage:
        """GET /v1/inbox?after=SEQ&limit=N."""
        path = f"/v1/inbox?after={int(after)}&limit={int(limit)}"
        # The largest page the hub may send for this limit, in bytes and in
        # elements: a hub that sends more is refused before it costs memory.
        limits = hub_api.inbox_page_limits(limit)
        ans = await self._request("GET", path, limit=limits.max_bytes)
        # Up to 16 MiB to decode: in a worker thread, not on the node's event loop.
        return await decode_off_loop(
            len(ans.body),
            self._decode_msgpack,
            ans,
            hub_api.InboxPage,
            "inbox answer",
            limits.max_bytes,
            limits.max_items,
        )

    async def ack(self, msg_ids: Sequence[str]) -> int:
        """POST /v1/inbox/ack; returns how many the hub deleted."""
        body = hub_api.encode_msgpack(hub_api.AckRequest(ids=list(msg_ids)))
        ans = await self._request(
            "POST", "/v1/inbox/ack", body=body, content_type=MSGPACK, limit=_MAX_JSON
        )
        return self._decode_json(ans, hub_api.AckAnswer, "ack answer").deleted

    async def submit_stats(self, envelope: bytes) -> tuple[str, int]:
        """POST /v1/stats with an envelope sealed to the hub; returns (period, revision)."""
        ans = await self._request(
            "POST", "/v1/stats", body=envelope, content_type=MSGPACK, limit=_MAX_JSON
        )
        m = self._decode_json(ans, hub_api.StatsAnswer, "stats answer")
        if not m.stored:
            raise HubResponseError(f"{ans.url}: stats answer is malformed (not stored)")
        return m.period, m.revision

    async def put_audit_head(self, document: bytes) -> int:
        """POST /v1/audit/head with a signed `audit-head` document; the hub's stored time."""
        ans = await self._request(
            "POST", "/v1/audit/head", body=document, content_type=MSGPACK, limit=_MAX_JSON
        )
        m = self._decode_json(ans, hub_api.AuditHeadAnswer, "audit head answer")
        if not m.stored:
            raise HubResponseError(f"{ans.url}: audit head answer is malformed (not stored)")
        return m.at

    async def audit_head(self) -> bytes | None:
        """GET /v1/audit/head: our newest head as the hub keeps it (not verified here),
        or None when the hub holds none."""
        ans = await self._request("GET", "/v1/audit/head", ok=(200, 404), limit=MAX_AUDIT_HEAD)
        return ans.body if ans.status == 200 else None

    async def rotate_keys(
        self, rotation: bytes, new_keys: PublicKeys, hub_keys: PublicKeys, *, now: int
    ) -> RotationResult:
        """POST /v1/keys/rotate (signed with our current keys) and verify the answer.

        `rotation` is the `key-rotation` document signed with our current key;
        the certificate in the answer must be the hub's, for us and `new_keys`.
        """
        ans = await self._request(
            "POST", "/v1/keys/rotate", body=rotation, content_type=MSGPACK, limit=64 << 10
        )
        m = self._decode_msgpack(ans, hub_api.RotationAnswer, "rotation answer", 64 << 10)
        try:
            cert = NodeCertificate.verify(m.cert, hub_keys, now=now)
        except ProtocolError as exc:
            raise HubResponseError(f"the hub's new node certificate is not valid: {exc}") from None
        if cert.node_id != self._node_id or cert.keys != new_keys:
            raise HubResponseError("the hub's new node certificate names another node or keys")
        return RotationResult(cert, m.cert, m.previous_until, m.directory_version)

    async def connect_push(self, heartbeat: float) -> aiohttp.ClientWebSocketResponse:
        """Open the signed WebSocket GET /v1/ws at the URL in use, or at the next that
        answers; the caller reads and closes it."""
        session = self._require_session()
        failures: list[_Failure] = []
        for url in self.urls.attempts():
            headers = self._sign("GET", "/v1/ws", b"")
            try:
                async with asyncio.timeout(self._timeout):
                    ws = await session.ws_connect(
                        URL(url + "/v1/ws", encoded=True),
                        headers=headers,
                        heartbeat=heartbeat,
                        autoping=True,
                    )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in NO_ANSWER:
                    failures.append(self._failed(url, f"HTTP {exc.status}", exc.status))
                    continue
                self._answered(url, failures)
                if exc.status >= 500 or exc.status == 429:
                    raise HubUnreachable(
                        f"the hub at {url} is not available (HTTP {exc.status})"
                    ) from None
                raise HubRefused("push-refused", f"HTTP {exc.status}", exc.status) from None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failures.append(self._failed(url, _reason(exc)))
                continue
            self._answered(url, failures)
            return ws
        raise _no_answer(failures)

    # --- plumbing

    def _decode_json(self, ans: _Answer, kind: type[T], what: str) -> T:
        try:
            return hub_api.decode_json(ans.body, kind, what)
        except ProtocolError as exc:
            raise HubResponseError(f"{ans.url}: {exc}") from None

    def _decode_msgpack(
        self,
        ans: _Answer,
        kind: type[T],
        what: str,
        max_bytes: int,
        max_items: int = hub_api.SMALL_ANSWER_ITEMS,
    ) -> T:
        try:
            return hub_api.decode_msgpack(ans.body, kind, what, max_bytes, max_items)
        except ProtocolError as exc:
            raise HubResponseError(f"{ans.url}: {exc}") from None

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HubClient.start() was not called")
        return self._session

    def _sign(self, method: str, path_qs: str, body: bytes) -> dict[str, str]:
        if self._node_id is None:
            raise RuntimeError("signed requests need a node id (enroll first)")
        return sign_request(
            method,
            path_qs,
            body,
            node_id=self._node_id,
            keys=self._keys,
            timestamp=self._deps.clock.now(),
            nonce=nonce(self._deps.random),
        )

    def _note_hub_time(self, date_header: str | None) -> None:
        hub_now = _hub_time(date_header)
        if hub_now is not None:
            self.clock_offset = self._deps.clock.now() - hub_now

    def _failed(
        self, url: str, reason: str, status: int | None = None, retry_after: int | None = None
    ) -> _Failure:
        self.urls.failed(url)
        return _Failure(url, reason, status, retry_after)

    def _answered(self, url: str, failures: Sequence[_Failure]) -> None:
        self.urls.answered(url, after=failures[-1].describe() if failures else "")

    async def _request(
        self,
        method: str,
        path_qs: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        signed: bool = True,
        content_type: str | None = None,
        ok: tuple[int, ...] = (200,),
        limit: int,
    ) -> _Answer:
        """Send the request to the URL in use, and to the next ones while none answers."""
        session = self._require_session()
        failures: list[_Failure] = []
        for url in self.urls.attempts():
            all_headers = dict(headers or {})
            if content_type is not None:
                all_headers["Content-Type"] = content_type
            if signed:
                # Signed for each try: a fresh timestamp and nonce (see the module docstring).
                all_headers.update(self._sign(method, path_qs, body))
            try:
                async with session.request(
                    method,
                    URL(url + path_qs, encoded=True),
                    data=body if body else None,
                    headers=all_headers,
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                    allow_redirects=False,
                ) as resp:
                    data = await _read_capped(resp, limit, url)
                    status, resp_headers = resp.status, resp.headers
                    self._note_hub_time(resp_headers.get("Date"))
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failures.append(self._failed(url, _reason(exc)))
                continue
            if status in NO_ANSWER:
                problem, _detail = _parse_problem(data, status)
                failures.append(
                    self._failed(
                        url,
                        _why(status, problem),
                        status,
                        _retry_after(resp_headers.get("Retry-After"), self._deps.clock.now()),
                    )
                )
                continue
            self._answered(url, failures)
            return self._judge(_Answer(url, status, resp_headers, data), ok)
        raise _no_answer(failures)

    def _judge(self, ans: _Answer, ok: tuple[int, ...]) -> _Answer:
        """The hub's answer, or the error it stands for."""
        status = ans.status
        if status in ok:
            return ans
        problem, detail = _parse_problem(ans.body, status)
        if status >= 500 or status == 429:
            raise HubUnreachable(
                f"the hub at {ans.url} is not available ({_why(status, problem)})",
                hub_status=status,
                retry_after=_retry_after(ans.headers.get("Retry-After"), self._deps.clock.now()),
            )
        raise HubRefused(problem, detail, status)


@dataclass(frozen=True)
class _Failure:
    """One URL that gave no answer to one request: why, and a proxy's status if any."""

    url: str
    reason: str
    status: int | None = None
    retry_after: int | None = None

    def describe(self) -> str:
        return f"{self.url}: {self.reason}"

    def error(self) -> HubUnreachable:
        if self.status is None:
            message = f"the hub at {self.url} is not reachable: {self.reason}"
        else:
            message = f"the hub at {self.url} is not available ({self.reason})"
        return HubUnreachable(message, hub_status=self.status, retry_after=self.retry_after)


def _no_answer(failures: Sequence[_Failure]) -> HubUnreachable:
    """The error of a request no URL answered, in one line naming each URL.

    Its status and Retry-After are those of the last proxy that answered, if
    any did: the worker treats "answered, but not now" differently from silence.
    """
    if not failures:
        raise RuntimeError("no hub URL was tried")
    if len(failures) == 1:
        return failures[0].error()
    answered = [f for f in failures if f.status is not None]
    last = answered[-1] if answered else failures[-1]
    tried = ", ".join(f"{f.url} ({f.reason[:80]})" for f in failures)
    return HubUnreachable(
        _one_line(f"the hub is not reachable at any of its {len(failures)} URLs: {tried}"),
        hub_status=last.status,
        retry_after=last.retry_after,
    )


def _reason(exc: BaseException) -> str:
    return _one_line(str(exc)) or type(exc).__name__


def _why(status: int, problem: str) -> str:
    return f"HTTP {status}" if problem == f"http-{status}" else f"HTTP {status} {problem}"


def _hub_time(value: str | None) -> int | None:
    """Unix seconds of an HTTP Date header, or None for a missing or odd one."""
    if not value:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _retry_after(value: str | None, now: int) -> int | None:
    """Seconds of a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(int(value), 86400)
    when = _hub_time(value)
    return None if when is None else min(max(0, when - now), 86400)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int, hub_url: str) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise HubResponseError(f"{hub_url}: answer larger than {limit} bytes")
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(64 << 10):
        buf += chunk
        if len(buf) > limit:
            raise HubResponseError(f"{hub_url}: answer larger than {limit} bytes")
    return bytes(buf)


def _parse_problem(data: bytes, status: int) -> tuple[str, str]:
    """(problem kind, detail) from an RFC 9457 body, or a generic pair if there is none."""
    try:
        doc = hub_api.decode_json(data, hub_api.ProblemDocument, "problem")
    except ProtocolError:
        return f"http-{status}", f"HTTP {status}"
    detail = doc.detail or doc.title or f"HTTP {status}"
    return hub_api.problem_kind(doc.type) or f"http-{status}", _one_line(detail)


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())[:_MAX_DETAIL]
