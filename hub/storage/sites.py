"""Queries on sites and their enrollment codes."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from hub.storage.engine import Db
from protocol.documents import OfficeEntry
from protocol.errors import MalformedError
from protocol.keys import PublicKeys, keys_valid_at


@dataclass(frozen=True)
class Site:
    """An office as the hub knows it. `keys` and `cert` are set once it enrolled."""

    node_id: str
    name: str
    org: str
    services: tuple[str, ...]
    languages: tuple[str, ...]
    area: str
    status: str
    created: int
    keys: PublicKeys | None = None
    cert: bytes | None = None
    enrolled: int | None = None
    revoked: int | None = None
    # After a key rotation the old keys stay valid until `previous_until`.
    previous_keys: PublicKeys | None = None
    previous_until: int = 0

    def keys_valid_at(self, now: int) -> tuple[PublicKeys, ...]:
        """Current keys, plus the previous ones during a rotation overlap."""
        if self.keys is None:
            return ()
        return keys_valid_at(self.keys, self.previous_keys, self.previous_until, now)

    def office_entry(self) -> OfficeEntry | None:
        """The directory entry, or None while the site has not enrolled."""
        if self.keys is None or self.status == "pending":
            return None
        return OfficeEntry(
            node_id=self.node_id,
            name=self.name,
            org=self.org,
            services=self.services,
            languages=self.languages,
            area=self.area,
            keys=self.keys,
            status=self.status,
            previous_keys=self.previous_keys,
            previous_until=self.previous_until if self.previous_keys is not None else 0,
        )


@dataclass(frozen=True)
class CodeRecord:
    lookup_id: str
    verifier: bytes
    node_id: str
    expires: int
    used_at: int | None


def _keys(sign: bytes | None, enc: bytes | None) -> PublicKeys | None:
    if sign is None or enc is None:
        return None
    try:
        return PublicKeys(sign=bytes(sign), encrypt=bytes(enc))
    except MalformedError:
        # Stored before the hub refused small-order keys: such an office can
        # receive nothing, so it counts as not enrolled (left out of the
        # directory, its requests refused) until it is revoked and added again.
        return None


def _site(row: dict[str, Any]) -> Site:
    keys = _keys(row["sign_key"], row["enc_key"])
    previous = _keys(row["prev_sign_key"], row["prev_enc_key"])
    return Site(
        node_id=row["node_id"],
        name=row["name"],
        org=row["org"],
        services=tuple(json.loads(row["services"])),
        languages=tuple(json.loads(row["languages"])),
        area=row["area"],
        status=row["status"],
        created=row["created"],
        keys=keys,
        cert=bytes(row["cert"]) if row["cert"] is not None else None,
        enrolled=row["enrolled"],
        revoked=row["revoked"],
        previous_keys=previous,
        previous_until=int(row["prev_until"] or 0) if previous is not None else 0,
    )


def site_from_row(columns: Sequence[str], row: Sequence[Any]) -> Site:
    """The site of one row as `sqlite3` returns it, with the names of its columns."""
    return _site(dict(zip(columns, row, strict=True)))


def site_rows(
    db: Db, node_ids: Collection[str] | None = None
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The column names and whole rows (plain tuples) of the sites that may be in
    the directory (not pending, with keys), all or those of `node_ids`;
    `site_from_row` makes each a Site."""
    query = (
        "SELECT * FROM sites WHERE status != 'pending' AND sign_key IS NOT NULL"
        " AND enc_key IS NOT NULL"
    )
    params: tuple[Any, ...] = ()
    if node_ids is not None:
        in_ids, param = db.any_of("node_id", sorted(node_ids))
        query += f" AND {in_ids}"
        params = (param,)
    cur = db.execute(query, params)
    columns = tuple(d[0] for d in cur.description)
    return columns, [tuple(r) for r in cur.fetchall()]


def get_site(db: Db, node_id: str) -> Site | None:
    for row in db.query("SELECT * FROM sites WHERE node_id = ?", [node_id]):
        return _site(row)
    return None


def list_sites(db: Db) -> list[Site]:
    return [_site(r) for r in db.query("SELECT * FROM sites ORDER BY node_id")]


class TakenIds:
    """The node ids in use, for `in`: one lookup in the primary key each, where a
    set of all of them would read the whole table for every site added."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def __contains__(self, node_id: object) -> bool:
        row = self._db.execute("SELECT 1 FROM sites WHERE node_id = ?", (node_id,)).fetchone()
        return row is not None


def node_ids(db: Db) -> set[str]:
    return {r[0] for r in db.execute("SELECT node_id FROM sites").fetchall()}


def active_ids(db: Db, candidates: set[str]) -> set[str]:
    if not candidates:
        return set()
    marks = ",".join("?" * len(candidates))
    cur = db.execute(
        f"SELECT node_id FROM sites WHERE status = 'active' AND node_id IN ({marks})",  # noqa: S608 -- only placeholders are interpolated
        sorted(candidates),
    )
    return {r[0] for r in cur.fetchall()}


def insert_site(db: Db, site: Site) -> None:
    db.execute(
        "INSERT INTO sites (node_id, name, org, services, languages, area, status, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            site.node_id,
            site.name,
            site.org,
            json.dumps(list(site.services)),
            json.dumps(list(site.languages)),
            site.area,
            site.status,
            site.created,
        ),
    )


def set_enrolled(db: Db, node_id: str, keys: PublicKeys, cert: bytes, now: int) -> None:
    db.execute(
        "UPDATE sites SET status = 'active', sign_key = ?, enc_key = ?, cert = ?, enrolled = ? "
        "WHERE node_id = ?",
        (keys.sign, keys.encrypt, cert, now, node_id),
    )


def set_rotated(
    db: Db,
    node_id: str,
    keys: PublicKeys,
    cert: bytes,
    previous: PublicKeys,
    previous_until: int,
    now: int,
) -> None:
    """The new keys become current; the old ones stay valid until `previous_until`."""
    db.execute(
        "UPDATE sites SET sign_key = ?, enc_key = ?, cert = ?, prev_sign_key = ?,"
        " prev_enc_key = ?, prev_until = ?, rotated = ? WHERE node_id = ?",
        (
            keys.sign,
            keys.encrypt,
            cert,
            previous.sign,
            previous.encrypt,
            previous_until,
            now,
            node_id,
        ),
    )


def clear_expired_previous(db: Db, now: int) -> list[str]:
    """Forget previous keys whose overlap has ended; return the sites concerned."""
    ids = [
        r[0]
        for r in db.execute(
            "SELECT node_id FROM sites WHERE prev_until IS NOT NULL AND prev_until <= ?", (now,)
        ).fetchall()
    ]
    if ids:
        db.execute(
            "UPDATE sites SET prev_sign_key = NULL, prev_enc_key = NULL, prev_until = NULL"
            " WHERE prev_until IS NOT NULL AND prev_until <= ?",
            (now,),
        )
    return ids


def set_revoked(db: Db, node_id: str, now: int) -> None:
    db.execute("UPDATE sites SET status = 'revoked', revoked = ? WHERE node_id = ?", (now, node_id))
    # A code not yet used must not enroll a revoked site.
    db.execute(
        "UPDATE enrollment_codes SET used_at = ? WHERE node_id = ? AND used_at IS NULL",
        (now, node_id),
    )


def insert_code(db: Db, code: CodeRecord, now: int) -> None:
    db.execute(
        "INSERT INTO enrollment_codes (lookup_id, verifier, node_id, created, expires) "
        "VALUES (?, ?, ?, ?, ?)",
        (code.lookup_id, code.verifier, code.node_id, now, code.expires),
    )


def find_code(db: Db, lookup_id: str) -> CodeRecord | None:
    for r in db.query("SELECT * FROM enrollment_codes WHERE lookup_id = ?", [lookup_id]):
        return CodeRecord(
            lookup_id=r["lookup_id"],
            verifier=bytes(r["verifier"]),
            node_id=r["node_id"],
            expires=r["expires"],
            used_at=r["used_at"],
        )
    return None


def mark_code_used(db: Db, lookup_id: str, now: int) -> None:
    db.execute("UPDATE enrollment_codes SET used_at = ? WHERE lookup_id = ?", (now, lookup_id))


def audit(db: Db, now: int, actor: str, action: str, subject: str, detail: str = "") -> None:
    """Append to the audit log (ids and actions only, never personal data)."""
    db.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        (now, actor, action, subject, detail),
    )
