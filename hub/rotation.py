"""Node key rotation: POST /v1/keys/rotate (docs/hub-api.md).

A node proves the change with a `key-rotation` document signed by its current
signing key and naming the new keys. The hub makes the new keys current,
keeps the old ones valid for `directory.key_overlap` (request signatures, and
receivers through the directory's `prev_keys`/`prev_until`), issues a node
certificate for the new keys and publishes the next directory version, all in
one durable transaction.

One rotation at a time: while an overlap runs, a second rotation is refused.
Allowing it would either cut the first overlap short (mail sealed to the
first keys is lost) or need a list of previous keys; and a stolen old key
must not be able to rotate the node away from its owner during the overlap.
The one exception is a retry of the same rotation (the node lost the answer):
same new keys, signed by the now previous key, which gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub import directory
from hub.auth import SignedCall, check_signed
from hub.certificates import issue_certificate
from hub.errors import Problem
from hub.settings import HubSettings
from hub.storage import sites as store
from hub.storage.db import write
from hub.storage.engine import Db
from protocol import hub_api
from protocol.documents import KeyRotation
from protocol.errors import BadSignatureError, ProtocolError
from protocol.hub_api import ProblemKind
from protocol.keys import PrivateKeys, PublicKeys

MAX_ROTATION_BODY = 4096


@dataclass(frozen=True)
class Rotated:
    """The outcome: the certificate for the new keys and the end of the overlap."""

    node_id: str
    cert: bytes
    previous_until: int
    directory_version: int
    replay: bool

    def answer(self) -> bytes:
        return hub_api.encode_msgpack(
            hub_api.RotationAnswer(
                cert=self.cert,
                previous_until=self.previous_until,
                directory_version=self.directory_version,
            )
        )


def rotate(
    db: Db,
    keys: PrivateKeys,
    settings: HubSettings,
    call: SignedCall,
) -> Rotated:
    """Authenticate the request and apply the rotation in one durable transaction."""
    if len(call.body) > MAX_ROTATION_BODY:
        raise Problem(
            ProblemKind.TOO_LARGE, 413, f"a key rotation is at most {MAX_ROTATION_BODY} bytes"
        )
    now = call.now
    with write(db, durable=True):
        node_id = check_signed(db, settings, call)
        site = store.get_site(db, node_id)
        if site is None or site.keys is None:  # check_signed_key has refused this already
            raise Problem(ProblemKind.UNKNOWN_NODE, 401, "this node is not enrolled with the hub")
        # Outside an overlap only the current key authenticates (hub/auth.py).
        if site.previous_keys is not None and now < site.previous_until:
            replay = _replay(call.body, site.previous_keys, site.keys, node_id)
            if replay and site.cert is not None:
                return Rotated(
                    node_id, site.cert, site.previous_until, directory.latest_version(db), True
                )
            raise Problem(
                ProblemKind.ROTATION_IN_PROGRESS,
                409,
                f"this node rotated its keys already; the previous keys stay valid until "
                f"{site.previous_until} (unix time) and a new rotation is possible after that",
            )
        rotation = _verified(call.body, site.keys)
        if rotation.node_id != node_id:
            raise Problem(ProblemKind.FORBIDDEN, 403, "the key rotation names another node")
        if abs(rotation.created - now) > settings.auth.max_skew:
            raise Problem(
                ProblemKind.CLOCK_SKEW,
                400,
                "the key rotation's creation time is too far from the hub's",
            )
        if (
            site.keys.sign == rotation.new_keys.sign
            or site.keys.encrypt == rotation.new_keys.encrypt
        ):
            raise Problem(
                ProblemKind.KEY_REUSE, 400, "the new keys must differ from the current ones"
            )
        until = now + settings.directory.key_overlap
        cert = issue_certificate(keys, settings, site, rotation.new_keys, now)
        store.set_rotated(db, node_id, rotation.new_keys, cert, site.keys, until, now)
        store.audit(
            db,
            now,
            node_id,
            "site.rotate",
            node_id,
            f"fingerprint {rotation.new_keys.fingerprint()}",
        )
        version = directory.publish(db, keys, settings, now).version
    return Rotated(node_id, cert, until, version, False)


def _verified(body: bytes, signer: PublicKeys) -> KeyRotation:
    try:
        return KeyRotation.verify(body, signer)
    except BadSignatureError:
        raise Problem(
            ProblemKind.BAD_SIGNATURE,
            401,
            "the key rotation is not signed with the node's current key",
        ) from None
    except ProtocolError as exc:
        raise Problem(ProblemKind.MALFORMED, 400, f"key rotation: {exc}") from None


def _replay(body: bytes, previous: PublicKeys, current: PublicKeys, node_id: str) -> bool:
    """True when `body` is the rotation already applied: old key signed the current keys."""
    try:
        rotation = KeyRotation.verify(body, previous)
    except ProtocolError:
        return False
    return rotation.node_id == node_id and rotation.new_keys == current


def end_overlaps(db: Db, keys: PrivateKeys, settings: HubSettings, now: int) -> int | None:
    """Drop previous keys whose overlap ended; publish a directory without them if any."""
    with write(db):
        if not store.clear_expired_previous(db, now):
            return None
        return directory.publish(db, keys, settings, now).version
