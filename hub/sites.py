"""Operator actions on sites: add (with a one-time code), revoke, list.

Each action is one durable transaction. Revoking publishes the next directory
version in it, so a revoked site is never listed after the commit. Adding
publishes nothing: a pending site is not listed (only the first site of a new
hub makes the first version). Enrolling is hub/enrollment.py's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container, Iterable
from dataclasses import dataclass

from hub import directory
from hub.errors import InvalidInputError, NotFoundError
from hub.settings import HubSettings
from hub.storage import sites as store
from hub.storage.db import write
from hub.storage.engine import Db
from protocol import codes
from protocol.enrollment import EnrollmentCode
from protocol.ids import HUB_ID, NODE_ID
from protocol.keys import PrivateKeys

_SLUG_MAX = 40
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


@dataclass(frozen=True)
class NewSite:
    """What `site add` prints: the node id, the one-time code and its expiry."""

    node_id: str
    code: str
    expires: int
    directory_version: int


def slug_for(name: str, taken: Container[str]) -> str:
    """A readable node id from the site name, unique among `taken`, never `hub`."""
    text = unicodedata.normalize("NFKD", name.lower().translate(_TRANSLIT))
    text = text.encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:_SLUG_MAX].strip("-")
    if len(base) < 2 or base == HUB_ID:
        base = f"site-{base}".strip("-") if base else "site"
    candidate, n = base, 1
    while candidate in taken or candidate == HUB_ID:
        n += 1
        candidate = f"{base}-{n}"
    if not NODE_ID.fullmatch(candidate):
        raise InvalidInputError("cannot derive a node id from this name")
    return candidate


def _text(value: str, what: str, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInputError(f"{what} must not be empty")
    if len(value) > 200 or any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise InvalidInputError(f"{what} must be at most 200 printable characters")
    return value


def add_site(
    db: Db,
    keys: PrivateKeys,
    settings: HubSettings,
    *,
    name: str,
    org: str,
    services: list[str],
    languages: list[str],
    area: str,
    now: int,
    secret: int,
    duplicate_name: bool = False,
) -> NewSite:
    """Register a site and issue its code; `secret` is 60 random bits from the caller.

    A name some site already has is refused unless `duplicate_name`: the usual
    cause is an operator adding an office again because its code expired, which
    `new_code` answers without burning a node id.
    """
    name, org, area = (
        _text(name, "--name"),
        _text(org, "--org"),
        _text(area, "--area", required=False),
    )
    for s in services:
        if s not in codes.REFERRAL_TARGET:
            known = ", ".join(sorted(codes.REFERRAL_TARGET))
            raise InvalidInputError(f"unknown service {s!r}; known services: {known}")
    for lang in languages:
        if not codes.LANGUAGE.fullmatch(lang):
            raise InvalidInputError(f"language {lang!r} is not an ISO 639 code such as 'de'")
    if len(set(services)) != len(services) or len(set(languages)) != len(languages):
        raise InvalidInputError("a service or language is given twice")
    code = EnrollmentCode.create(keys.public, secret)
    expires = now + settings.enrollment.code_ttl
    with write(db):
        same = [
            row[0]
            for row in db.execute("SELECT node_id, name FROM sites").fetchall()
            if row[1].casefold() == name.casefold()
        ]
        if same and not duplicate_name:
            raise InvalidInputError(
                f"a site named {name!r} exists already (node id {same[0]}); for a new"
                f" enrollment code run `mbe-hub site code --dir DIR {same[0]}`, or pass"
                " --duplicate-name to add a second site of that name"
            )
        node_id = slug_for(name, store.TakenIds(db))
        site = store.Site(
            node_id=node_id,
            name=name,
            org=org,
            services=tuple(services),
            languages=tuple(languages),
            area=area,
            status="pending",
            created=now,
        )
        store.insert_site(db, site)
        store.insert_code(
            db,
            store.CodeRecord(code.lookup_id(), code.verifier(), node_id, expires, None),
            now,
        )
        store.audit(db, now, "operator", "site.add", node_id)
        # A pending site is not listed: the directory changes when it enrolls.
        # Only a hub without any version yet publishes its first here.
        current = directory.latest_version(db)
        version = current or directory.publish(db, keys, settings, now, changed={node_id}).version
    return NewSite(node_id=node_id, code=code.text(), expires=expires, directory_version=version)


@dataclass(frozen=True)
class NewCode:
    """What `site code` prints: a fresh one-time code for a site not yet enrolled."""

    node_id: str
    code: str
    expires: int
    replaced: int  # unused earlier codes that no longer work


def new_code(
    db: Db,
    keys: PrivateKeys,
    settings: HubSettings,
    node_id: str,
    *,
    now: int,
    secret: int,
) -> NewCode:
    """Issue a new enrollment code for a pending site (its code expired or was
    lost); earlier unused codes stop working. The node id stays."""
    code = EnrollmentCode.create(keys.public, secret)
    expires = now + settings.enrollment.code_ttl
    with write(db):
        site = store.get_site(db, node_id)
        if site is None:
            raise NotFoundError(f"no site with node id {node_id!r} (see `mbe-hub site list`)")
        if site.status != "pending":
            raise InvalidInputError(
                f"site {node_id!r} is {site.status}: only a site that has not enrolled yet"
                " gets a new code (an enrolled office rotates its keys with `mbe-node keys"
                " rotate`)"
            )
        replaced = db.execute(
            "UPDATE enrollment_codes SET expires = ? WHERE node_id = ? AND used_at IS NULL"
            " AND expires > ?",
            (now, node_id, now),
        ).rowcount
        store.insert_code(
            db,
            store.CodeRecord(code.lookup_id(), code.verifier(), node_id, expires, None),
            now,
        )
        store.audit(db, now, "operator", "site.code", node_id)
    return NewCode(node_id=node_id, code=code.text(), expires=expires, replaced=replaced)


def revoke_site(db: Db, keys: PrivateKeys, settings: HubSettings, node_id: str, now: int) -> int:
    """Revoke at once; return the new directory version."""
    with write(db):
        site = store.get_site(db, node_id)
        if site is None:
            raise NotFoundError(f"no site with node id {node_id!r} (see `mbe-hub site list`)")
        if site.status == "revoked":
            raise InvalidInputError(f"site {node_id!r} is already revoked")
        store.set_revoked(db, node_id, now)
        store.audit(db, now, "operator", "site.revoke", node_id)
        return directory.publish(db, keys, settings, now, changed={node_id}).version


def revoked_among(db: Db, node_ids: Iterable[str]) -> set[str]:
    """Those of `node_ids` whose site is revoked (or gone); read-only, one query.

    The running hub asks this about its push connections: `revoke_site` may run
    in another process (`mbe-hub site revoke`), which cannot close them itself.
    """
    wanted = sorted(set(node_ids))
    if not wanted:
        return set()
    in_wanted, param = db.any_of("node_id", wanted)
    active = {
        row[0]
        for row in db.execute(
            f"SELECT node_id FROM sites WHERE status != 'revoked' AND {in_wanted}",  # noqa: S608 -- any_of gives a fixed condition with a placeholder
            (param,),
        ).fetchall()
    }
    return set(wanted) - active
