"""Audit chain heads: POST and GET /v1/audit/head (docs/hub-api.md, docs/hub.md).

A node signs the head of its audit log's hash chain (an `audit-head` document,
protocol/documents.py: node id, hash, time) with its own key and sends it in a
signed request. The hub checks the document's signature with the site's keys
(the previous ones too during a key rotation's overlap), that it names the
node that sent it, that its time is not in the future, and that it is not
older than the head the hub holds; then it keeps it in place of the old one.
The hub learns a hash and a time, nothing of the log. The node fetches its own
head back to prove that its newest entries were not deleted or rewritten.
"""

from __future__ import annotations

from hub.auth import SignedCall, check_signed
from hub.errors import Problem
from hub.settings import HubSettings
from hub.storage import audit_heads as store
from hub.storage import sites
from hub.storage.db import write
from hub.storage.engine import Db
from protocol import hub_api
from protocol.documents import MAX_AUDIT_HEAD, AuditHead
from protocol.errors import BadSignatureError, ProtocolError
from protocol.hub_api import ProblemKind


def put_head(
    db: Db, settings: HubSettings, call: SignedCall
) -> tuple[str, hub_api.AuditHeadAnswer]:
    """Authenticate the request, check the document and keep it, in one transaction;
    return the node id and the answer."""
    if len(call.body) > MAX_AUDIT_HEAD:
        raise Problem(
            ProblemKind.TOO_LARGE, 413, f"an audit head is at most {MAX_AUDIT_HEAD} bytes"
        )
    with write(db, durable=True):
        node_id = check_signed(db, settings, call)
        site = sites.get_site(db, node_id)
        keys = site.keys_valid_at(call.now) if site is not None else ()
        try:
            head = AuditHead.verify(call.body, keys)
        except BadSignatureError:
            raise Problem(
                ProblemKind.BAD_SIGNATURE, 400, "the audit head's signature does not verify"
            ) from None
        except ProtocolError as exc:
            raise Problem(ProblemKind.MALFORMED, 400, f"audit head: {exc}") from None
        if head.node_id != node_id:
            raise Problem(ProblemKind.FORBIDDEN, 403, "the audit head names another node")
        if head.at > call.now + settings.auth.max_skew:
            raise Problem(ProblemKind.CLOCK_SKEW, 400, "the audit head's time is in the future")
        held = store.get_head(db, node_id)
        if held is not None and head.at < held.at:
            raise Problem(
                ProblemKind.CONFLICT,
                409,
                f"the hub holds a newer audit head of this node (signed at {held.at}, unix time)",
            )
        store.put_head(db, store.StoredHead(node_id, head.at, head.hash, call.body))
    return node_id, hub_api.AuditHeadAnswer(at=head.at, stored=True)


def get_head(db: Db, node_id: str) -> bytes | None:
    """The signed document of the node's newest head, or None."""
    held = store.get_head(db, node_id)
    return None if held is None else held.doc
