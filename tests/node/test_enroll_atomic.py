"""Enrollment is saved in one transaction: a crash midway leaves the node as it was."""

from __future__ import annotations

import sqlite3

import pytest
from pytest_aiohttp import AiohttpServer

from node.storage.network import Network
from node.sync.enroll import enroll
from node.sync.errors import AlreadyEnrolled
from tests.node.conftest import make_office
from tests.sync.fakehub import FakeHub, fixed_keys
from tests.sync.helpers import fast_settings


async def test_a_crash_while_saving_leaves_no_half_enrolled_node(
    aiohttp_server: AiohttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory is not kept when saving the enrollment fails; a re-run then enrolls."""
    hub = FakeHub()
    url = str((await aiohttp_server(hub.app(), host="127.0.0.1")).make_url("/")).rstrip("/")
    code = hub.add_site("diakonie-erlangen")
    office = make_office("diakonie-er", enrolled=False)
    sync, keys = office.store.sync, fixed_keys(30)

    def crash(self: Network, state: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as m:
        m.setattr(Network, "save_enrollment", crash)
        with pytest.raises(sqlite3.OperationalError):
            await enroll(fast_settings(), sync, keys, url, code)
    assert sync.load_enrollment() is None
    assert sync.directory_bytes() is None
    assert sync.get_sync_state("directory_version") is None
    state = await enroll(fast_settings(), sync, keys, url, code)
    assert sync.load_enrollment() == state
    assert sync.directory_bytes() is not None
    with pytest.raises(AlreadyEnrolled):
        await enroll(fast_settings(), sync, keys, url, code)
    office.store.close()
