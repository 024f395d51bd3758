"""Each directory version holds exactly what the sites table says, however it is made.

`hub.directory.publish` keeps the packed entry of each site row from one
version to the next (issue 11: enrolling site 2 000 re-made all 2 000 entries).
Every version must still be byte for byte the directory made from scratch:
`Directory(...)` with `Site.office_entry()` of every site, signed.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

import pytest

from hub import directory
from hub.enrollment import enroll
from hub.keyfile import read_keys
from hub.publisher import publish_due
from hub.settings import HubSettings
from hub.sites import add_site, revoke_site
from hub.storage import sites as store
from hub.storage.db import write
from hub.storage.engine import Db
from protocol.documents import Directory, OfficeEntry
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.keys import PrivateKeys
from tests.hub.engines import hub_db

NOW = 1_800_000_000


def made_from_scratch(db: Db, settings: HubSettings) -> bytes:
    """The newest version as `publish` made it before it kept entries."""
    current = directory.latest(db)
    assert current is not None
    offices = tuple(
        entry for site in store.list_sites(db) if (entry := site.office_entry()) is not None
    )
    return Directory(
        version=current.version,
        issued=current.issued,
        expires=current.expires,
        region=settings.region,
        offices=offices,
    ).sign(read_keys(settings.key_path))


def published(db: Db, settings: HubSettings) -> Directory:
    """Publish a version now; check it against the one made from scratch; return it."""
    keys = read_keys(settings.key_path)
    with write(db):
        data = directory.publish(db, keys, settings, NOW).data
    assert data == made_from_scratch(db, settings)
    return Directory.verify(data, keys.public, now=NOW)


def new_site(db: Db, settings: HubSettings, name: str) -> tuple[str, str]:
    new = add_site(
        db,
        read_keys(settings.key_path),
        settings,
        name=name,
        org="Caritas",
        services=["mbe"],
        languages=["de", "ar"],
        area="Köln",
        now=NOW,
        secret=int.from_bytes(os.urandom(8), "big") >> 4,
    )
    assert directory.latest(db) is not None
    assert directory.latest(db).data == made_from_scratch(db, settings)  # type: ignore[union-attr]
    return new.node_id, new.code


def enrolled(db: Db, settings: HubSettings, code: str) -> PrivateKeys:
    keys = PrivateKeys.generate()
    body = EnrollmentRequest.create(EnrollmentCode.parse(code), keys).encode()
    hub_keys = read_keys(settings.key_path)
    node_id, _ = enroll(db, hub_keys, settings, body, NOW)
    # What the hub's publisher does right after the answer (hub/publisher.py).
    publish_due(db, hub_keys, settings, NOW, {node_id})
    assert directory.latest(db).data == made_from_scratch(db, settings)  # type: ignore[union-attr]
    return keys


def office(d: Directory, node_id: str) -> OfficeEntry:
    entry = d.office(node_id)
    assert entry is not None
    return entry


def test_every_version_equals_the_directory_made_from_scratch(settings: HubSettings) -> None:
    """Adds, enrollments, a rotation, a revocation: each version is the from-scratch bytes."""
    db = hub_db(settings)
    try:
        ids = {}
        for name in ("Alpha", "Beta", "Gamma", "Delta"):
            node_id, code = new_site(db, settings, name)
            ids[name] = node_id
            if name != "Delta":  # Delta stays pending: never in the directory
                enrolled(db, settings, code)
        d = published(db, settings)
        assert [o.node_id for o in d.offices] == sorted(ids[n] for n in ("Alpha", "Beta", "Gamma"))
        rotated = PrivateKeys.generate().public
        old = office(d, ids["Beta"]).keys
        with write(db):
            store.set_rotated(db, ids["Beta"], rotated, b"cert", old, NOW + 3600, NOW)
        d = published(db, settings)
        assert office(d, ids["Beta"]).keys == rotated
        assert office(d, ids["Beta"]).previous_keys == old
        revoke_site(db, read_keys(settings.key_path), settings, ids["Gamma"], NOW)
        assert directory.latest(db).data == made_from_scratch(db, settings)  # type: ignore[union-attr]
        d = published(db, settings)
        assert office(d, ids["Gamma"]).status == "revoked"
        with write(db):
            assert store.clear_expired_previous(db, NOW + 3600) == [ids["Beta"]]
        assert office(published(db, settings), ids["Beta"]).previous_keys is None
    finally:
        db.close()


def test_a_row_changed_by_another_process_shows_in_the_next_version(
    settings: HubSettings,
) -> None:
    """Another connection renames a site: the kept entry of the old row is not used."""
    db = hub_db(settings)
    try:
        node_id, code = new_site(db, settings, "Before Office")
        enrolled(db, settings, code)
        assert office(published(db, settings), node_id).name == "Before Office"
        with hub_db(settings) as other:
            other.execute("UPDATE sites SET name = 'After Office' WHERE node_id = ?", (node_id,))
        assert office(published(db, settings), node_id).name == "After Office"
        with hub_db(settings) as other:
            other.execute("UPDATE sites SET name = 'Before Office' WHERE node_id = ?", (node_id,))
        assert office(published(db, settings), node_id).name == "Before Office"
    finally:
        db.close()


def test_a_stored_low_order_key_is_left_out_also_after_it_was_listed(
    settings: HubSettings,
) -> None:
    """A key of small order written into a listed row (an older hub): the next version drops it."""
    db = hub_db(settings)
    try:
        bad_id, bad_code = new_site(db, settings, "Legacy Office")
        enrolled(db, settings, bad_code)
        good_id, good_code = new_site(db, settings, "Good Office")
        enrolled(db, settings, good_code)
        assert published(db, settings).office(bad_id) is not None
        with hub_db(settings) as other:
            other.execute("UPDATE sites SET enc_key = ? WHERE node_id = ?", (bytes(32), bad_id))
        d = published(db, settings)
        assert d.office(bad_id) is None
        assert d.office(good_id) is not None
        assert store.get_site(db, bad_id).keys is None  # type: ignore[union-attr]
    finally:
        db.close()


def test_a_version_published_by_another_process_is_taken_in(
    settings: HubSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the changed rows are read while the newest version holds the kept entries;
    after another process published other entries (a revocation), every row is."""
    reads: list[list[str] | None] = []
    site_rows = store.site_rows

    def counting(
        db: Db, node_ids: Collection[str] | None = None
    ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        reads.append(None if node_ids is None else sorted(node_ids))
        return site_rows(db, node_ids)

    monkeypatch.setattr(store, "site_rows", counting)
    ours = directory._Offices()
    monkeypatch.setattr(directory, "_OFFICES", ours)
    db = hub_db(settings)
    try:
        ids = {}
        for name in ("One", "Two"):
            ids[name], code = new_site(db, settings, name)
            enrolled(db, settings, code)
        assert reads[-1] == [ids["Two"]]  # enrolling Two read Two's row only
        # Another process (state of its own) adds a pending site: same entries.
        monkeypatch.setattr(directory, "_OFFICES", directory._Offices())
        ids["Three"], code = new_site(db, settings, "Three")
        monkeypatch.setattr(directory, "_OFFICES", ours)
        enrolled(db, settings, code)
        assert reads[-1] == [ids["Three"]]
        # Another process revokes One: the newest version is not what we keep.
        monkeypatch.setattr(directory, "_OFFICES", directory._Offices())
        revoke_site(db, read_keys(settings.key_path), settings, ids["One"], NOW)
        monkeypatch.setattr(directory, "_OFFICES", ours)
        ids["Four"], code = new_site(db, settings, "Four")
        enrolled(db, settings, code)
        assert reads[-1] is None  # every row read
        read_before = len(reads)
        ids["Five"], code = new_site(db, settings, "Five")
        assert len(reads) == read_before  # adding a pending site publishes nothing
        enrolled(db, settings, code)
        assert reads[-1] == [ids["Five"]]
        d = published(db, settings)
        assert office(d, ids["One"]).status == "revoked"
        assert [o.node_id for o in d.offices] == sorted(
            ids[n] for n in ("One", "Two", "Three", "Four", "Five")
        )
    finally:
        db.close()
