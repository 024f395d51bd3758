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

import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from hub.settings import HubSettings
from hub.storage import sites as site_store
from hub.storage.engine import Db
from protocol.documents import DOCUMENT_ITEMS, MAX_DIRECTORY_BYTES, Directory, sign_document
from protocol.encoding import Packed, as_map, pack, unpack
from protocol.errors import ProtocolError
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


def latest(db: Db) -> DirectoryVersion | None:
    for r in db.query(
        "SELECT version, issued, expires, data FROM directory_versions "
        "ORDER BY version DESC LIMIT 1"
    ):
        return DirectoryVersion(r["version"], r["issued"], r["expires"], bytes(r["data"]))
    return None


def latest_version(db: Db) -> int:
    """The newest published version, 0 when none exists (a cheap primary-key lookup)."""
    row = db.execute("SELECT max(version) FROM directory_versions").fetchone()
    return int(row[0] or 0)


def next_version(newest: int, now: int) -> int:
    """The number of the next directory version: above `newest` and at least `now`."""
    return max(newest + 1, now)


class _Offices:
    """The directory entries of the sites, kept from one version to the next.

    A new version differs from the one before in a site or two, and reading and
    re-making thousands of entries for it made each enrollment cost time in
    proportion to all sites (issue 11). This keeps, per site, the row it last
    read and the packed entry it made of it (`Site.office_entry`, keys checked
    by `PublicKeys`), or None for a site left out (pending, or a stored key of
    small order).

    `publish(changed=...)` reads only the rows of the sites its caller changed,
    and only while the newest version in the database holds exactly the entries
    kept here (whichever process published it): the kept rows then are the
    table as that version showed it, and the caller's changes are read again.
    Every change to sites publishes in the same transaction (hub/sites.py,
    hub/enrollment.py, hub/rotation.py, hub/maintenance.py), so a change made by
    another process shows as a newest version with other entries: then, and
    without `changed`, every row is read (an entry is made again only where its
    row differs from the one kept). A failed commit leaves the newest version as
    it was, which the next publish compares with.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._columns: tuple[str, ...] = ()
        self._rows: dict[str, tuple[tuple[Any, ...], Packed | None]] = {}
        self._order: list[str] = []  # the node ids of _rows, sorted
        self._entries: list[Packed] | None = None  # _listed(), until _rows changes

    def entries(
        self, db: Db, region: str, changed: Collection[str] | None
    ) -> tuple[list[Packed], bool]:
        """The packed entries of the next version, by node id, and whether they are the
        newest version's (nothing to publish); call inside the transaction."""
        with self._lock:
            incremental = changed is not None and self._newest_is_kept(db, region)
            before = {n: self._rows[n][1] for n in changed or () if n in self._rows}
            columns, rows = site_store.site_rows(db, changed if incremental else None)
            if columns != self._columns:  # another schema: nothing kept applies
                self._rows = {}
                if incremental:
                    incremental = False
                    columns, rows = site_store.site_rows(db)
            kept = dict(self._rows) if incremental else {}
            if incremental and changed is not None:
                for node_id in changed:
                    kept.pop(node_id, None)  # a changed site now left out has no row here
            position = columns.index("node_id")
            for row in rows:
                kept[row[position]] = self._entry(columns, row)
            if not incremental or any((n in kept) != (n in self._rows) for n in changed or ()):
                self._order = sorted(kept)  # a site came or went
            self._columns, self._rows = columns, kept
            self._entries = None
            if incremental:
                # The newest version held the kept entries: it still does if no
                # changed site's entry is other than before (a pending site has none).
                after = {n: kept[n][1] for n in changed or () if n in kept}
                same = all(before.get(n) == after.get(n) for n in changed or ())
            else:
                same = self._newest_matches(db, region)
            return self._listed(), same

    def _listed(self) -> list[Packed]:
        """The kept entries by node id (as SQLite orders text: UTF-8 bytes, code points)."""
        if self._entries is None:
            rows = self._rows
            self._entries = [e for n in self._order if (e := rows[n][1]) is not None]
        return self._entries

    def _entry(
        self, columns: tuple[str, ...], row: tuple[Any, ...]
    ) -> tuple[tuple[Any, ...], Packed | None]:
        known = self._rows.get(row[columns.index("node_id")])
        if known is not None and known[0] == row:
            return known
        office = site_store.site_from_row(columns, row).office_entry()
        return row, None if office is None else Packed(pack(office.to_map()))

    def _newest_is_kept(self, db: Db, region: str) -> bool:
        """True if entries are kept and the newest version's body is the one they make."""
        return bool(self._rows) and self._newest_matches(db, region)

    def _newest_matches(self, db: Db, region: str) -> bool:
        """True if the newest version's body is the one the kept entries make."""
        current = latest(db)
        if current is None:
            return False
        try:
            body = as_map(unpack(current.data, MAX_DIRECTORY_BYTES, DOCUMENT_ITEMS), "document")
        except ProtocolError:
            return False
        doc = Directory(current.version, current.issued, current.expires, region, offices=())
        return bool(body.get("body") == pack({**doc.body(), "offices": self._listed()}))


_OFFICES = _Offices()


def publish(
    db: Db,
    keys: PrivateKeys,
    settings: HubSettings,
    now: int,
    *,
    changed: Collection[str] | None = None,
) -> DirectoryVersion:
    """Sign the current sites as the next version; call inside a write transaction.

    `changed`: the node ids of the sites this transaction changed (added,
    enrolled, revoked), if the caller knows them all; only their rows are read
    then (see `_Offices`). Without it every row is read, as for the periodic
    re-signing, which so also takes in a row changed outside the hub's code.
    Either way the bytes are those of `Directory(...).sign(keys)` with
    `Site.office_entry()` of every site (tests/hub/test_directory_entries.py).
    """
    # Versions are numbered in order across hub processes: the next one is read
    # and written by one process at a time (nothing to wait for on SQLite).
    db.lock("directory")
    offices, _ = _OFFICES.entries(db, settings.region, changed)
    return _store(db, keys, settings, now, offices)


def publish_changes(
    db: Db,
    keys: PrivateKeys,
    settings: HubSettings,
    now: int,
    *,
    changed: Collection[str] | None = None,
) -> DirectoryVersion | None:
    """`publish` if the entries differ from the newest version's, else None.

    For work that may find nothing new: the deferred publication of enrollments
    (`hub.publisher`), which an enrollment answered again also asks for, and
    the maintenance pass's backstop, which reads every row and so takes in a
    publication a stopped hub process still owed, or a row changed outside the
    hub's code (a database restored with PostgreSQL's own tools). With
    `changed`, only those rows are read while the newest version is the one this
    process last made, as for `publish`.
    """
    db.lock("directory")
    offices, same = _OFFICES.entries(db, settings.region, changed)
    return None if same else _store(db, keys, settings, now, offices)


def _store(
    db: Db, keys: PrivateKeys, settings: HubSettings, now: int, offices: list[Packed]
) -> DirectoryVersion:
    """Sign `offices` as the next version and store it, keeping the newest `KEEP_VERSIONS`."""
    version = next_version(latest_version(db), now)
    doc = Directory(
        version=version,
        issued=now,
        expires=now + settings.directory.ttl,
        region=settings.region,
        offices=(),
    )
    data = sign_document(Directory.KIND, {**doc.body(), "offices": offices}, keys)
    db.execute(
        "INSERT INTO directory_versions (version, issued, expires, data) VALUES (?, ?, ?, ?)",
        (version, now, doc.expires, data),
    )
    db.notify("directory", [str(version)])
    db.execute(
        "DELETE FROM directory_versions WHERE version NOT IN "
        "(SELECT version FROM directory_versions ORDER BY version DESC LIMIT ?)",
        (KEEP_VERSIONS,),
    )
    return DirectoryVersion(version, now, doc.expires, data)


def refresh_due(db: Db, settings: HubSettings, now: int) -> bool:
    """True when the newest directory is missing or expires within `resign_before`."""
    current = latest(db)
    return current is None or current.expires - now <= settings.directory.resign_before
