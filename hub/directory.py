"""The signed office directory: a new version on every change to sites.

Versions are numbered inside the writing transaction, so the CLI in one
process and the server in another never hand out the same number. The server
re-signs the current contents before the directory expires, as a new version,
so a node never holds an expired one.

A version is `max(newest + 1, now)` in unix seconds: it never goes backwards,
not even after an old backup of the hub is restored. Nodes refuse a directory
older than the one they hold, and a plain counter restarted from the backup's
number would be refused until it caught up. The clock-based floor keeps a
restored hub's next version above anything published before, as long as the
hub published at most one version per second on average (site changes and a
re-signing every few days, far below that) and its clock is right. The
counter part keeps versions increasing if the clock steps back.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from hub.settings import HubSettings
from hub.storage import sites as site_store
from protocol.documents import Directory, OfficeEntry
from protocol.keys import PrivateKeys

KEEP_VERSIONS = 20


@dataclass(frozen=True)
class DirectoryVersion:
    version: int
    issued: int
    expires: int
    data: bytes

    @property
    def etag(self) -> str:
        return f'"v{self.version}"'


def latest(db: sqlite_utils.Database) -> DirectoryVersion | None:
    for r in db.query(
        "SELECT version, issued, expires, data FROM directory_versions "
        "ORDER BY version DESC LIMIT 1"
    ):
        return DirectoryVersion(r["version"], r["issued"], r["expires"], bytes(r["data"]))
    return None


def latest_version(db: sqlite_utils.Database) -> int:
    """The newest published version, 0 when none exists (a cheap primary-key lookup)."""
    row = db.execute("SELECT max(version) FROM directory_versions").fetchone()
    return int(row[0] or 0)


def next_version(newest: int, now: int) -> int:
    """The number of the next directory version: above `newest` and at least `now`."""
    return max(newest + 1, now)


def publish(
    db: sqlite_utils.Database, keys: PrivateKeys, settings: HubSettings, now: int
) -> DirectoryVersion:
    """Sign the current sites as the next version; call inside a write transaction."""
    offices: list[OfficeEntry] = []
    for site in site_store.list_sites(db):
        entry = site.office_entry()
        if entry is not None:
            offices.append(entry)
    version = next_version(latest_version(db), now)
    doc = Directory(
        version=version,
        issued=now,
        expires=now + settings.directory.ttl,
        region=settings.region,
        offices=tuple(offices),
    )
    data = doc.sign(keys)
    db.execute(
        "INSERT INTO directory_versions (version, issued, expires, data) VALUES (?, ?, ?, ?)",
        (version, now, doc.expires, data),
    )
    db.execute(
        "DELETE FROM directory_versions WHERE version NOT IN "
        "(SELECT version FROM directory_versions ORDER BY version DESC LIMIT ?)",
        (KEEP_VERSIONS,),
    )
    return DirectoryVersion(version, now, doc.expires, data)


def refresh_due(db: sqlite_utils.Database, settings: HubSettings, now: int) -> bool:
    """True when the newest directory is missing or expires within `resign_before`."""
    current = latest(db)
    return current is None or current.expires - now <= settings.directory.resign_before
