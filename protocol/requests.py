"""Signing node-to-hub HTTP requests, as pure functions.

The node signs a canonical string of method, path (with query), SHA-256 of the
body, timestamp, nonce and its node id. The hub checks the signature against
the node's certificate keys, the timestamp against its own clock (passed in as
`now`) within `max_skew`, and the nonce against `NonceCache`, which only needs
to remember nonces for the skew window: anything older fails the time check.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocol.errors import BadSignatureError, ClockSkewError, MalformedError, ReplayError
from protocol.ids import NODE_ID
from protocol.keys import PrivateKeys, PublicKeys

HEADER_NODE = "X-MBE-Node"
HEADER_TIMESTAMP = "X-MBE-Timestamp"
HEADER_NONCE = "X-MBE-Nonce"
HEADER_SIGNATURE = "X-MBE-Signature"
DEFAULT_MAX_SKEW = 300
NONCE = re.compile(r"[0-9a-f]{32}")
# ASCII digits only: str.isdigit() also accepts "²" or Arabic-Indic digits.
TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIG = re.compile(r"[0-9a-f]{128}")
_DOMAIN = "mbe-sync/request/v1"


@dataclass(frozen=True)
class SignedRequest:
    """The authentication fields of a request, as parsed from its headers."""

    node_id: str
    timestamp: int
    nonce: str
    signature: bytes


def canonical(
    method: str, path: str, body: bytes, node_id: str, timestamp: int, nonce: str
) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(
        [_DOMAIN, method.upper(), path, digest, str(timestamp), nonce, node_id]
    ).encode()


def sign_request(
    method: str,
    path: str,
    body: bytes,
    *,
    node_id: str,
    keys: PrivateKeys,
    timestamp: int,
    nonce: str,
) -> dict[str, str]:
    """The headers to add to a request; `nonce` is 16 random bytes as hex."""
    if not NONCE.fullmatch(nonce):
        raise MalformedError("nonce must be 32 lowercase hex characters")
    sig = keys.sign(canonical(method, path, body, node_id, timestamp, nonce))
    return {
        HEADER_NODE: node_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sig.hex(),
    }


def parse_request_headers(headers: Mapping[str, str]) -> SignedRequest:
    """Read the authentication headers; MalformedError if any is missing or odd."""
    node = headers.get(HEADER_NODE, "")
    ts = headers.get(HEADER_TIMESTAMP, "")
    nonce = headers.get(HEADER_NONCE, "")
    sig = headers.get(HEADER_SIGNATURE, "")
    if not NODE_ID.fullmatch(node):
        raise MalformedError(f"{HEADER_NODE} header missing or malformed")
    if not TIMESTAMP.fullmatch(ts):
        raise MalformedError(f"{HEADER_TIMESTAMP} header missing or malformed")
    if not NONCE.fullmatch(nonce):
        raise MalformedError(f"{HEADER_NONCE} header missing or malformed")
    if not _SIG.fullmatch(sig):
        raise MalformedError(f"{HEADER_SIGNATURE} header missing or malformed")
    return SignedRequest(node_id=node, timestamp=int(ts), nonce=nonce, signature=bytes.fromhex(sig))


def check_skew(timestamp: int, now: int, max_skew: int = DEFAULT_MAX_SKEW) -> None:
    if abs(now - timestamp) > max_skew:
        raise ClockSkewError(
            f"request time differs from the hub's clock by {abs(now - timestamp)} s "
            f"(at most {max_skew} s allowed); check the server clock (NTP)"
        )


def verify_request(
    method: str,
    path: str,
    body: bytes,
    signed: SignedRequest,
    signer: PublicKeys,
    *,
    now: int,
    max_skew: int = DEFAULT_MAX_SKEW,
) -> None:
    """Raise ClockSkewError or BadSignatureError unless the request is authentic."""
    check_skew(signed.timestamp, now, max_skew)
    try:
        signer.verify(
            canonical(method, path, body, signed.node_id, signed.timestamp, signed.nonce),
            signed.signature,
        )
    except BadSignatureError:
        raise BadSignatureError("request signature does not verify") from None


@dataclass
class NonceCache:
    """Remembers (node, nonce) pairs for the skew window; refuses a repeat.

    Pure: the caller passes `now`. Entries older than twice the skew are dropped,
    since a request that old is refused by the clock check already.
    """

    max_skew: int = DEFAULT_MAX_SKEW
    _seen: dict[tuple[str, str], int] = field(default_factory=dict)

    def check_and_remember(self, node_id: str, nonce: str, timestamp: int, now: int) -> None:
        self._prune(now)
        key = (node_id, nonce)
        if key in self._seen:
            raise ReplayError("this request nonce was already used")
        self._seen[key] = timestamp

    def _prune(self, now: int) -> None:
        horizon = now - 2 * self.max_skew
        if self._seen and min(self._seen.values()) < horizon:
            self._seen = {k: t for k, t in self._seen.items() if t >= horizon}

    def __len__(self) -> int:
        return len(self._seen)
