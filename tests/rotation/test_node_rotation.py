"""`keys rotate` on the node against the real hub app served on a loopback port."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpServer

from hub.app import create_app
from hub.keyfile import read_keys
from hub.settings import HubSettings
from hub.sites import add_site
from hub.storage.db import connect
from hub.storage.sites import get_site
from node.clock import Deps
from node.config import NodeSettings, load_keys, load_settings
from node.datadir import init_data_dir
from node.rotation import (
    STATE_PREVIOUS_UNTIL,
    KeyFiles,
    KeyRotationFailed,
    describe,
    rotate_keys,
    write_key_file,
)
from node.storage.store import NodeStore
from node.sync.client import HubClient
from node.sync.enroll import enroll
from node.sync.inbox import IncomingRefused, open_incoming
from protocol.documents import Directory, KeyRotation, NodeCertificate, OfficeEntry
from protocol.envelope import InnerMessage, seal
from protocol.keys import PrivateKeys
from protocol.payloads import Receipt
from tests.hub.conftest import init_data_dir as init_hub_dir

OVERLAP = 3600


@dataclass
class Office:
    settings: NodeSettings
    store: NodeStore
    node_id: str
    hub_url: str


def key_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith("node.key"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def hub_settings(tmp_path: Path) -> HubSettings:
    return init_hub_dir(tmp_path / "hub", f"\n[directory]\nkey_overlap = {OVERLAP}\n")


async def _office(tmp_path: Path, hub_settings: HubSettings, url: str) -> Office:
    db = connect(hub_settings.db_path)
    site = add_site(
        db,
        read_keys(hub_settings.key_path),
        hub_settings,
        name="Caritas Köln",
        org="Caritas",
        services=["mbe"],
        languages=["de"],
        area="Köln",
        now=int(time.time()),
        secret=int.from_bytes(os.urandom(8), "big") >> 4,
    )
    db.close()
    data = tmp_path / "node"
    keys = init_data_dir(data, "Caritas Köln")
    settings = load_settings(data)
    store = NodeStore.open(settings.db_path, keys, Deps.system(), message_ttl=86400)
    state = await enroll(settings.sync, store.sync, keys, url, site.code)
    return Office(settings, store, state.node_id, url)


@pytest.fixture
async def office(
    tmp_path: Path, hub_settings: HubSettings, aiohttp_server: AiohttpServer
) -> AsyncIterator[Office]:
    server = await aiohttp_server(create_app(hub_settings), host="127.0.0.1")
    o = await _office(tmp_path, hub_settings, str(server.make_url("/")).rstrip("/"))
    yield o
    o.store.close()


async def test_rotation_switches_key_files_and_certificate(
    office: Office, hub_settings: HubSettings
) -> None:
    """After a rotation node.key holds the new keys, node.key.previous the old, both 0600."""
    old = load_keys(office.settings.key_path)
    done = await rotate_keys(office.settings, office.store.sync)
    new = load_keys(office.settings.key_path)
    assert new != old
    assert load_keys(office.settings.previous_key_path) == old
    assert not office.settings.pending_key_path.exists()
    assert mode(office.settings.key_path) == 0o600
    assert mode(office.settings.previous_key_path) == 0o600
    assert done.fingerprint == new.public.fingerprint()
    assert not done.resumed
    state = office.store.sync.load_enrollment()
    assert state is not None
    cert = NodeCertificate.verify(state.certificate, state.hub_keys, now=int(time.time()))
    assert cert.keys == new.public
    assert office.store.sync.get_sync_state(STATE_PREVIOUS_UNTIL) == str(done.previous_until)
    db = connect(hub_settings.db_path)
    site = get_site(db, office.node_id)
    db.close()
    assert site is not None
    assert site.keys == new.public
    assert site.previous_keys == old.public
    assert any("restart" in line for line in describe(done))


async def test_second_rotation_during_overlap_refused_locally(office: Office) -> None:
    """A second `keys rotate` during the overlap fails with one line and changes nothing."""
    await rotate_keys(office.settings, office.store.sync)
    held = office.settings.key_path.read_bytes()
    with pytest.raises(KeyRotationFailed, match="overlap runs until"):
        await rotate_keys(office.settings, office.store.sync)
    assert office.settings.key_path.read_bytes() == held


async def test_unreachable_hub_changes_nothing(
    tmp_path: Path, hub_settings: HubSettings, aiohttp_server: AiohttpServer
) -> None:
    """With the hub down the command fails with one line and leaves every file as it was."""
    server = await aiohttp_server(create_app(hub_settings), host="127.0.0.1")
    office = await _office(tmp_path, hub_settings, str(server.make_url("/")).rstrip("/"))
    await server.close()
    before = key_files(office.settings.data_dir)
    key = office.settings.key_path.read_bytes()
    try:
        with pytest.raises(KeyRotationFailed, match="nothing was changed") as err:
            await rotate_keys(office.settings, office.store.sync)
    finally:
        office.store.close()
    assert "\n" not in str(err.value)
    assert key_files(office.settings.data_dir) == before
    assert office.settings.key_path.read_bytes() == key


async def test_lost_answer_is_finished_by_running_again(office: Office) -> None:
    """If the hub rotated but the node never saved the answer, a second run finishes it."""
    old = load_keys(office.settings.key_path)
    new = PrivateKeys.generate()
    write_key_file(office.settings.pending_key_path, new)
    state = office.store.sync.load_enrollment()
    assert state is not None
    doc = KeyRotation(node_id=office.node_id, new_keys=new.public, created=int(time.time()))
    async with HubClient(
        office.hub_url, keys=old, node_id=office.node_id, request_timeout=5.0
    ) as client:
        await client.rotate_keys(doc.sign(old), new.public, state.hub_keys, now=int(time.time()))
    done = await rotate_keys(office.settings, office.store.sync)
    assert done.resumed
    assert load_keys(office.settings.key_path) == new
    assert load_keys(office.settings.previous_key_path) == old


async def test_key_files_give_previous_keys_until_the_overlap_ends(office: Office) -> None:
    """The serve process's key source offers the old keys during the overlap, then deletes them."""
    old = load_keys(office.settings.key_path)
    done = await rotate_keys(office.settings, office.store.sync)
    source = KeyFiles(office.settings, office.store.sync)
    ring = source(int(time.time()))
    assert ring.current == load_keys(office.settings.key_path)
    assert ring.previous_at(int(time.time())) == old
    after = source(done.previous_until)
    assert after.previous is None
    assert not office.settings.previous_key_path.exists()
    assert office.store.sync.get_sync_state(STATE_PREVIOUS_UNTIL) == ""


def test_mail_sealed_to_the_previous_key_opens_only_with_it() -> None:
    """An envelope sealed to our old encryption key opens when the previous keys are given."""
    old, new, sender = PrivateKeys.generate(), PrivateKeys.generate(), PrivateKeys.generate()
    now = int(time.time())
    inner = InnerMessage(
        msg_id=os.urandom(16).hex(),
        sender="awo-fuerth",
        recipient="caritas-koeln",
        created=now,
        expires=now + 3600,
        payload=Receipt(of_msg_id=os.urandom(16).hex(), received=now),
    )
    env = seal(inner, sender, old.public, ephemeral_secret=os.urandom(32))
    entry = OfficeEntry("awo-fuerth", "AWO Fürth", "AWO", ("mbe",), ("de",), "Fürth", sender.public)
    directory = Directory(version=1, issued=now, expires=now + 3600, region="r", offices=(entry,))
    with pytest.raises(IncomingRefused):
        open_incoming(
            env,
            node_id="caritas-koeln",
            keys=new,
            hub_keys=old.public,
            directory=directory,
            now=now,
        )
    opened = open_incoming(
        env,
        node_id="caritas-koeln",
        keys=new,
        hub_keys=old.public,
        directory=directory,
        now=now,
        previous_keys=old,
    )
    assert opened.msg_id == inner.msg_id


async def test_key_files_are_read_again_only_when_they_change(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sync cycle asks the key source; unchanged files are not read again,
    a rotation (new files) is picked up at the next call."""
    import node.rotation

    reads: list[Path] = []
    real = load_keys

    def counting(path: Path) -> PrivateKeys:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(node.rotation, "load_keys", counting)
    source = KeyFiles(office.settings, office.store.sync)
    first = source(int(time.time()))
    assert len(reads) == 1
    assert source(int(time.time())) is first
    assert len(reads) == 1
    await rotate_keys(office.settings, office.store.sync)
    ring = source(int(time.time()))
    assert ring.current == real(office.settings.key_path) != first.current
    assert ring.previous == first.current
