"""A test-side hub client: signs requests with protocol.requests, seals envelopes.

Works over pytest-aiohttp's TestClient and over a plain ClientSession with a
`base_url`, so the same helper drives the in-process hub and a subprocess.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from protocol.encoding import pack, unpack
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import Envelope, InnerMessage, seal
from protocol.keys import PrivateKeys, PublicKeys
from protocol.payloads import Consent, ReferralOffer
from protocol.requests import sign_request
from support.clock import Clock, SystemClock

# pytest-aiohttp's TestClient in process, or a ClientSession(base_url=...) for a subprocess.
Requester = TestClient[Any, Any] | aiohttp.ClientSession


@dataclass(frozen=True)
class Node:
    """An enrolled simulated office: its id, private keys and certificate."""

    node_id: str
    keys: PrivateKeys
    cert: bytes
    hub_keys: PublicKeys
    directory: bytes


async def enroll(http: Requester, code_text: str, keys: PrivateKeys | None = None) -> Node:
    """Enroll like `mbe-node enroll`, including the fingerprint check."""
    keys = keys or PrivateKeys.generate()
    code = EnrollmentCode.parse(code_text)
    body = EnrollmentRequest.create(code, keys).encode()
    resp = await http.request(
        "POST", "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"}
    )
    if resp.status != 200:
        raise EnrollError(resp.status, await resp.json())
    answer = unpack(await resp.read())
    hub_keys = PublicKeys.from_map(answer["hub_keys"])
    code.check_hub(hub_keys)
    return Node(answer["node_id"], keys, answer["cert"], hub_keys, answer["directory"])


class EnrollError(Exception):
    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('type')}")
        self.status = status
        self.problem = problem

    @property
    def kind(self) -> str:
        return str(self.problem["type"]).rsplit("/", 1)[-1]


def problem_kind(doc: dict[str, Any]) -> str:
    return str(doc["type"]).rsplit("/", 1)[-1]


class HubClient:
    """Signed requests as one node."""

    def __init__(self, http: Requester, node: Node, clock: Clock | None = None) -> None:
        self.http = http
        self.node = node
        self.clock = clock or SystemClock()

    def headers(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
        keys: PrivateKeys | None = None,
        node_id: str | None = None,
    ) -> dict[str, str]:
        return sign_request(
            method,
            path,
            body,
            node_id=node_id or self.node.node_id,
            keys=keys or self.node.keys,
            timestamp=self.clock.now() if timestamp is None else timestamp,
            nonce=nonce or os.urandom(16).hex(),
        )

    async def signed(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        extra_headers: dict[str, str] | None = None,
        **sign_kw: Any,
    ) -> aiohttp.ClientResponse:
        headers = self.headers(method, path, body, **sign_kw)
        headers.update(extra_headers or {})
        if body:
            headers["Content-Type"] = "application/msgpack"
        resp: aiohttp.ClientResponse = await self.http.request(
            method, path, data=body, headers=headers
        )
        return resp

    async def upload(self, envelopes: list[bytes]) -> dict[str, Any]:
        resp = await self.signed("POST", "/v1/messages", pack({"envelopes": envelopes}))
        assert resp.status == 200, await resp.text()
        out: dict[str, Any] = await resp.json()
        return out

    async def fetch(self, after: int = 0, limit: int = 100) -> dict[str, Any]:
        resp = await self.signed("GET", f"/v1/inbox?after={after}&limit={limit}")
        assert resp.status == 200, await resp.text()
        out: dict[str, Any] = unpack(await resp.read(), 64 << 20)
        return out

    async def ack(self, ids: list[str]) -> int:
        resp = await self.signed("POST", "/v1/inbox/ack", pack({"ids": ids}))
        assert resp.status == 200, await resp.text()
        return int((await resp.json())["deleted"])

    async def ws(self) -> aiohttp.ClientWebSocketResponse:
        ws: aiohttp.ClientWebSocketResponse = await self.http.ws_connect(
            "/v1/ws", headers=self.headers("GET", "/v1/ws")
        )
        return ws


def referral(
    sender: Node,
    recipient_id: str,
    recipient_keys: PublicKeys,
    *,
    now: int,
    ttl: int = 7 * 24 * 3600,
    note: str = "Bitte um Rückruf",
    family_name: str = "Mustermann",
    msg_id: str | None = None,
) -> Envelope:
    """A sealed referral offer carrying personal data (the test's markers go in here)."""
    consent = Consent(
        consent_id=os.urandom(16).hex(),
        given="2026-01-10",
        form="written",
        legal_regime="gdpr",
        fields=("family_name", "note"),
    )
    inner = InnerMessage(
        msg_id=msg_id or os.urandom(16).hex(),
        sender=sender.node_id,
        recipient=recipient_id,
        created=now,
        expires=now + ttl,
        payload=ReferralOffer(
            referral_id=os.urandom(16).hex(),
            target_type="mbe",
            consent=consent,
            client={"family_name": family_name, "note": note},
        ),
    )
    return seal(inner, sender.keys, recipient_keys, ephemeral_secret=os.urandom(32))
