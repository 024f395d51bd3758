"""Hub-signed documents: node certificates and the office directory.

A signed document is a map {"doc": kind, "body": packed body, "sig": signature}.
The signature covers a domain tag, the kind and the exact body bytes, so a
certificate can never be replayed as a directory or the other way round, and
the verifier checks the bytes that were signed rather than a re-encoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from protocol import codes
from protocol.encoding import (
    as_map,
    exact_keys,
    field_bytes,
    field_int,
    field_list,
    field_str,
    field_str_list,
    pack,
    unpack,
)
from protocol.errors import (
    BadSignatureError,
    ExpiredError,
    InvalidCodeError,
    MalformedError,
    StaleError,
    UnknownTypeError,
)
from protocol.ids import NODE_ID
from protocol.keys import SIGNATURE_SIZE, PrivateKeys, PublicKeys, keys_valid_at

_DOMAIN = b"mbe-sync/doc/v1\x00"
MAX_DIRECTORY_BYTES = 4 << 20
MAX_OFFICES = 5000
# Element budgets (`protocol.encoding.unpack`): the outer document is a map of
# three; a directory office at most a map of ten with services and languages
# (50 each), keys and previous keys.
DOCUMENT_ITEMS = 64
MAX_DIRECTORY_ITEMS = 64 + 140 * MAX_OFFICES
SITE_STATUS = frozenset({"active", "revoked"})
MAX_AUDIT_HEAD = 1024
AUDIT_HASH = re.compile(r"[0-9a-f]{64}")


def sign_document(kind: str, body: dict[str, Any], key: PrivateKeys) -> bytes:
    raw = pack(body)
    sig = key.sign(_DOMAIN + kind.encode() + b"\x00" + raw)
    return pack({"doc": kind, "body": raw, "sig": sig})


def verify_document(
    data: bytes,
    kind: str,
    signer: PublicKeys,
    max_bytes: int = 64 << 10,
    max_items: int = MAX_DIRECTORY_ITEMS,
) -> dict[str, Any]:
    """Check the signature and return the decoded body map.

    The outer map is decoded with a tight element budget before the signature
    is checked; the body, only once it verifies, with `max_items` (by default
    enough for the largest directory; `max_bytes` bounds it too).
    """
    m = as_map(unpack(data, max_bytes, DOCUMENT_ITEMS), "document")
    exact_keys(m, {"doc", "body", "sig"}, set(), "document")
    if field_str(m, "doc", "document", max_len=40) != kind:
        raise UnknownTypeError(f"expected a {kind} document")
    raw = field_bytes(m, "body", "document")
    signer.verify(
        _DOMAIN + kind.encode() + b"\x00" + raw,
        field_bytes(m, "sig", "document", size=SIGNATURE_SIZE),
    )
    return as_map(unpack(raw, max_bytes, max_items), kind)


@dataclass(frozen=True)
class NodeCertificate:
    """The hub's statement that a node id owns these public keys."""

    KIND = "node-cert"
    node_id: str
    name: str
    org: str
    keys: PublicKeys
    issued: int
    expires: int

    def body(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "name": self.name,
            "org": self.org,
            "keys": self.keys.to_map(),
            "issued": self.issued,
            "expires": self.expires,
        }

    def sign(self, hub_keys: PrivateKeys) -> bytes:
        return sign_document(self.KIND, self.body(), hub_keys)

    @classmethod
    def verify(cls, data: bytes, hub_public: PublicKeys, *, now: int) -> NodeCertificate:
        w = cls.KIND
        m = verify_document(data, w, hub_public)
        exact_keys(m, {"node", "name", "org", "keys", "issued", "expires"}, set(), w)
        cert = cls(
            node_id=field_str(m, "node", w, pattern=NODE_ID),
            name=field_str(m, "name", w),
            org=field_str(m, "org", w),
            keys=PublicKeys.from_map(m["keys"], w + ".keys"),
            issued=field_int(m, "issued", w),
            expires=field_int(m, "expires", w),
        )
        if cert.expires <= now:
            raise ExpiredError("node certificate has expired")
        return cert


@dataclass(frozen=True)
class OfficeEntry:
    """One office in the directory. `previous_keys` stay valid until `previous_until`."""

    node_id: str
    name: str
    org: str
    services: tuple[str, ...]
    languages: tuple[str, ...]
    area: str
    keys: PublicKeys
    status: str = "active"
    previous_keys: PublicKeys | None = None
    previous_until: int = 0

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "node": self.node_id,
            "name": self.name,
            "org": self.org,
            "services": list(self.services),
            "languages": list(self.languages),
            "area": self.area,
            "keys": self.keys.to_map(),
            "status": self.status,
        }
        if self.previous_keys is not None:
            m["prev_keys"] = self.previous_keys.to_map()
            m["prev_until"] = self.previous_until
        return m

    @classmethod
    def from_map(cls, obj: Any) -> OfficeEntry:
        w = "office"
        m = as_map(obj, w)
        exact_keys(
            m,
            {"node", "name", "org", "services", "languages", "area", "keys", "status"},
            {"prev_keys", "prev_until"},
            w,
        )
        status = field_str(m, "status", w, max_len=20)
        if status not in SITE_STATUS:
            raise InvalidCodeError(f"{w}.status: not a known code")
        prev = PublicKeys.from_map(m["prev_keys"], w) if "prev_keys" in m else None
        return cls(
            node_id=field_str(m, "node", w, pattern=NODE_ID),
            name=field_str(m, "name", w),
            org=field_str(m, "org", w),
            services=field_str_list(m, "services", w, allowed=codes.REFERRAL_TARGET),
            languages=field_str_list(m, "languages", w, pattern=codes.LANGUAGE),
            area=field_str(m, "area", w),
            keys=PublicKeys.from_map(m["keys"], w + ".keys"),
            status=status,
            previous_keys=prev,
            previous_until=field_int(m, "prev_until", w) if prev is not None else 0,
        )

    def keys_valid_at(self, now: int) -> tuple[PublicKeys, ...]:
        """Current keys, plus the previous ones during a rotation overlap."""
        return keys_valid_at(self.keys, self.previous_keys, self.previous_until, now)


@dataclass(frozen=True)
class Directory:
    """The hub-signed, versioned list of offices, valid until `expires`."""

    KIND = "directory"
    version: int
    issued: int
    expires: int
    region: str
    offices: tuple[OfficeEntry, ...]

    def body(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "issued": self.issued,
            "expires": self.expires,
            "region": self.region,
            "offices": [o.to_map() for o in self.offices],
        }

    def sign(self, hub_keys: PrivateKeys) -> bytes:
        return sign_document(self.KIND, self.body(), hub_keys)

    def office(self, node_id: str) -> OfficeEntry | None:
        for o in self.offices:
            if o.node_id == node_id:
                return o
        return None

    @classmethod
    def verify(
        cls,
        data: bytes,
        hub_public: PublicKeys,
        *,
        now: int,
        held_version: int = 0,
    ) -> Directory:
        """Refuse an unsigned, expired, or older-than-held directory."""
        w = cls.KIND
        m = verify_document(data, w, hub_public, MAX_DIRECTORY_BYTES, MAX_DIRECTORY_ITEMS)
        exact_keys(m, {"version", "issued", "expires", "region", "offices"}, set(), w)
        offices = tuple(
            OfficeEntry.from_map(o) for o in field_list(m, "offices", w, max_len=MAX_OFFICES)
        )
        if len({o.node_id for o in offices}) != len(offices):
            raise MalformedError(f"{w}: an office appears twice")
        d = cls(
            version=field_int(m, "version", w, lo=1),
            issued=field_int(m, "issued", w),
            expires=field_int(m, "expires", w),
            region=field_str(m, "region", w),
            offices=offices,
        )
        if d.expires <= now:
            raise ExpiredError("directory has expired")
        if d.version < held_version:
            raise StaleError("directory is older than the one already held")
        return d


@dataclass(frozen=True)
class KeyRotation:
    """A node's new keys, signed with its old signing key."""

    KIND = "key-rotation"
    node_id: str
    new_keys: PublicKeys
    created: int

    def sign(self, old_keys: PrivateKeys) -> bytes:
        body = {"node": self.node_id, "keys": self.new_keys.to_map(), "created": self.created}
        return sign_document(self.KIND, body, old_keys)

    @classmethod
    def verify(cls, data: bytes, old_public: PublicKeys) -> KeyRotation:
        w = cls.KIND
        m = verify_document(data, w, old_public)
        exact_keys(m, {"node", "keys", "created"}, set(), w)
        return cls(
            node_id=field_str(m, "node", w, pattern=NODE_ID),
            new_keys=PublicKeys.from_map(m["keys"], w + ".keys"),
            created=field_int(m, "created", w),
        )


@dataclass(frozen=True)
class AuditHead:
    """A node's statement that its audit log's newest entry has this hash, at `at`.

    Signed with the node's own key and kept by the hub (only the newest per
    node), so the node can later prove that no newest entries were deleted or
    rewritten since (docs/node.md, "Audit"). The hash reveals nothing of the log.
    """

    KIND = "audit-head"
    node_id: str
    hash: str
    at: int

    def sign(self, keys: PrivateKeys) -> bytes:
        body = {"node": self.node_id, "hash": self.hash, "at": self.at}
        return sign_document(self.KIND, body, keys)

    @classmethod
    def verify(cls, data: bytes, signers: tuple[PublicKeys, ...]) -> AuditHead:
        """Accept a signature by any of `signers` (current and previous keys)."""
        w = cls.KIND
        m = _verify_by_any(data, w, signers, MAX_AUDIT_HEAD)
        exact_keys(m, {"node", "hash", "at"}, set(), w)
        digest = field_str(m, "hash", w, max_len=64)
        if not AUDIT_HASH.fullmatch(digest):
            raise MalformedError(f"{w}.hash: not a SHA-256 in hex")
        return cls(
            node_id=field_str(m, "node", w, pattern=NODE_ID),
            hash=digest,
            at=field_int(m, "at", w, lo=0),
        )


def _verify_by_any(
    data: bytes, kind: str, signers: tuple[PublicKeys, ...], max_bytes: int
) -> dict[str, Any]:
    """`verify_document` by the first of `signers` whose signature holds."""
    for signer in signers[:-1]:
        try:
            return verify_document(data, kind, signer, max_bytes)
        except BadSignatureError:
            continue
    if not signers:
        raise BadSignatureError(f"{kind}: no key to verify with")
    return verify_document(data, kind, signers[-1], max_bytes)
