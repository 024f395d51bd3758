"""The hub side of enrollment: check the code proof, issue the certificate.

The code is looked up by its lookup id; the proof is checked against the
stored verifier; a code works once and until its expiry. All of it happens in
one durable transaction, so two nodes racing with the same code cannot both
win, and the answer is sent only once the enrollment is on disk.

The answer carries the newest directory version, which does not list the new
site yet: the version that does is published right after the answer
(`hub.publisher`), one for all enrollments within `directory.publish_interval`.
Signing and storing a version costs time in proportion to all sites, and it
would otherwise be paid on every enrollment (issue 11).

A node whose answer was lost (a timeout, a proxy reset, a crash before it
saved the answer) retries with the same keys: the code is used, but both
proofs hold for exactly the keys it was used with, so the hub answers again
with the stored certificate and the current directory and changes nothing
else. Other keys with a used code are refused (`used-code`).
"""

from __future__ import annotations

from hub import directory
from hub.certificates import issue_certificate
from hub.errors import Problem
from hub.settings import HubSettings
from hub.storage import sites as store
from hub.storage.db import write
from hub.storage.engine import Db
from protocol import hub_api
from protocol.enrollment import EnrollmentRequest
from protocol.errors import BadSignatureError, ProtocolError
from protocol.hub_api import ProblemKind
from protocol.keys import PrivateKeys


def enroll(
    db: Db,
    keys: PrivateKeys,
    settings: HubSettings,
    body: bytes,
    now: int,
) -> tuple[str, bytes]:
    """Return (node id, msgpack answer) or raise a Problem."""
    try:
        req = EnrollmentRequest.decode(body)
    except ProtocolError as exc:
        raise Problem(ProblemKind.MALFORMED, 400, f"enrollment request: {exc}") from None
    with write(db):
        code = store.find_code(db, req.lookup_id)
        if code is None:
            raise Problem(
                ProblemKind.UNKNOWN_CODE, 404, "no such enrollment code; check it for typos"
            )
        try:
            req.verify(code.verifier)
        except BadSignatureError:
            raise Problem(
                ProblemKind.BAD_SIGNATURE, 403, "the enrollment proof does not match the code"
            ) from None
        site = store.get_site(db, code.node_id)
        if site is None or site.status == "revoked":
            raise Problem(ProblemKind.REVOKED_NODE, 403, "the site of this code has been revoked")
        if code.used_at is not None:
            if site.keys == req.keys and site.cert is not None:
                # A retry by the node that used the code (its answer was lost):
                # both proofs hold for the same keys, so answer the same again.
                current = directory.latest(db)
                if current is not None:
                    store.audit(db, now, site.node_id, "site.enroll_again", site.node_id)
                    return site.node_id, _answer(site.cert, site.node_id, keys, current.data)
            raise Problem(ProblemKind.USED_CODE, 409, "this enrollment code was already used")
        if code.expires <= now:
            raise Problem(
                ProblemKind.EXPIRED_CODE, 410, "this enrollment code has expired; ask for a new one"
            )
        cert = issue_certificate(keys, settings, site, req.keys, now)
        store.mark_code_used(db, code.lookup_id, now)
        store.set_enrolled(db, site.node_id, req.keys, cert, now)
        store.audit(db, now, site.node_id, "site.enroll", site.node_id)
        # The version with the new site is published after the answer, by
        # hub.publisher, together with the enrollments that arrive meanwhile.
        current = directory.latest(db) or directory.publish(
            db, keys, settings, now, changed={site.node_id}
        )
    return site.node_id, _answer(cert, site.node_id, keys, current.data)


def _answer(cert: bytes, node_id: str, keys: PrivateKeys, directory_data: bytes) -> bytes:
    return hub_api.encode_msgpack(
        hub_api.EnrollAnswer(
            node_id=node_id,
            cert=cert,
            hub_keys=hub_api.RawKeys(sign=keys.public.sign, enc=keys.public.encrypt),
            directory=directory_data,
        )
    )
