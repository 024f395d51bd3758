"""Queries on `audit_heads`: the newest signed audit chain head of each site."""

from __future__ import annotations

from dataclasses import dataclass

from hub.storage.db import rows
from hub.storage.engine import Db


@dataclass(frozen=True)
class StoredHead:
    node_id: str
    at: int
    hash: str
    doc: bytes


def get_head(db: Db, node_id: str) -> StoredHead | None:
    found = rows(db, "SELECT node_id, at, hash, doc FROM audit_heads WHERE node_id = ?", [node_id])
    if not found:
        return None
    r = found[0]
    return StoredHead(node_id=r["node_id"], at=r["at"], hash=r["hash"], doc=bytes(r["doc"]))


def put_head(db: Db, head: StoredHead) -> None:
    """Replace the site's head (call in a write transaction, after the checks)."""
    db.execute(
        "INSERT INTO audit_heads (node_id, at, hash, doc) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (node_id) DO UPDATE SET at = excluded.at, hash = excluded.hash,"
        " doc = excluded.doc",
        [head.node_id, head.at, head.hash, head.doc],
    )
