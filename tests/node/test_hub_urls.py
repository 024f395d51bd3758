"""The hub's URLs in the node: `mbe-node hub-urls` and `enroll --hub` repeated, the
upgrade of an enrolled node's one URL (migration 0012) and the status views."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from demo.processes import free_port
from node.cli import main
from node.clock import Deps
from node.errors import NotEnrolled
from node.storage.db import migrations
from node.storage.store import NodeStore
from node.sync.ports import STATE_HUB_IN_USE, EnrollmentState
from protocol.enrollment import EnrollmentCode
from support.migrations import Stamp
from support.migrations import migrate as run_migrations
from tests.clocks import CountingRandom, FakeClock
from tests.node.conftest import HUB, ApiNode, keys_from

FIRST = "http://127.0.0.1:1"  # what make_api_node enrolls with
Client = TestClient[web.Request, web.Application]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _urls(api_node: ApiNode, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The stored list, as `mbe-node hub-urls` shows it."""
    code, out, _ = _run(["hub-urls", "--dir", str(api_node.settings.data_dir)], capsys)
    assert code == 0
    return re.findall(r"^  \d+\. (\S+)", out, flags=re.MULTILINE)


def _dead() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("bad", "expect"),
    [
        ("ftp://hub.example.org", "must look like https://hub.example.org"),
        ("https://hub.example.org/api", "must not have a path"),
        ("http://[::1", "not a valid URL"),
        ("http://127.0.0.1:2/", "given twice"),
    ],
    ids=["scheme", "path", "unparsable", "twice"],
)
def test_a_bad_url_is_refused_in_one_line_and_the_list_is_kept(
    api_node: ApiNode, capsys: pytest.CaptureFixture[str], bad: str, expect: str
) -> None:
    """hub-urls with one bad URL: exit 1, one line naming the problem; nothing changed."""
    data = str(api_node.settings.data_dir)
    code, out, err = _run(["hub-urls", "--dir", data, "http://127.0.0.1:2", bad], capsys)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("mbe-node: error: ")
    assert expect in err
    assert "the stored hub URLs are unchanged" in err
    assert _urls(api_node, capsys) == [FIRST]


def test_urls_that_do_not_answer_now_are_stored_with_a_warning(
    api_node: ApiNode, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hub process being set up (or down) may be listed: stored, with a warning each."""
    data = str(api_node.settings.data_dir)
    one, two = _dead(), _dead()
    code, out, err = _run(["hub-urls", "--dir", data, one + "/", two], capsys)
    assert code == 0
    assert err.count("mbe-node: warning: ") == 2
    assert one in err
    assert two in err
    # Nothing used yet: the node starts at the first.
    assert f"  1. {one} (preferred, in use)\n  2. {two}\n" in out
    assert "no restart" in out
    assert _urls(api_node, capsys) == [one, two]


def test_status_shows_the_url_in_use_and_the_list(
    api_node: ApiNode, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mbe-node status`: Hub is the URL the node used last, Hub URLs the ordered list."""
    data = str(api_node.settings.data_dir)
    one, two = _dead(), _dead()
    assert _run(["hub-urls", "--dir", data, one, two], capsys)[0] == 0
    _in_use(api_node, two)
    code, out, _ = _run(["status", "--dir", data], capsys)
    assert code == 0
    rows = dict(re.findall(r"^(\S.*?)  +(.*)$", out, flags=re.MULTILINE))
    assert rows["Hub"] == two
    assert rows["Hub URLs"] == f"1. {one} (preferred); 2. {two} (in use)"
    # A recorded URL the list no longer holds is not shown as in use.
    assert _run(["hub-urls", "--dir", data, one], capsys)[0] == 0
    rows = dict(re.findall(r"^(\S.*?)  +(.*)$", _run(["status", "--dir", data], capsys)[1], re.M))
    assert rows["Hub"] == one
    assert "Hub URLs" not in rows


def _in_use(api_node: ApiNode, url: str) -> None:
    """What a running `mbe-node serve` records when it uses `url`."""
    store = NodeStore.open(
        api_node.settings.db_path, keys_from("caritas-nbg"), api_node.deps, message_ttl=86400
    )
    try:
        store.sync.set_sync_state(STATE_HUB_IN_USE, url)
    finally:
        store.close()


async def test_the_status_page_and_api_show_the_urls(
    api_node: ApiNode, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """GET /api/v1/status has hub_url (in use) and hub_urls; the page lists the URLs."""
    one, two = _dead(), _dead()
    argv = ["hub-urls", "--dir", str(api_node.settings.data_dir), one, two]
    assert await asyncio.to_thread(main, argv) == 0
    _in_use(api_node, two)
    status = await (await client.get("/api/v1/status", headers=api_node.auth)).json()
    assert (status["hub_url"], status["hub_urls"]) == (two, [one, two])
    page = await (await client.get("/status")).text()
    figure = re.search(r'<dd data-figure="hub_urls"[^>]*>(.*?)</dd>', page)
    assert figure is not None
    items = re.findall(r"<li>(.*?)</li>", figure.group(1))
    assert items == [f"{one} (bevorzugt)", f"{two} · in Benutzung"]
    assert re.search(rf'<dt>Hub \(in Benutzung\)</dt><dd data-figure="hub_url">{two}</dd>', page)


def test_hub_urls_needs_an_enrolled_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before enrollment there is no list to show or change: one line, exit 1."""
    data = str(tmp_path / "office")
    assert main(["init", "--dir", data]) == 0
    for argv in (["hub-urls", "--dir", data], ["hub-urls", "--dir", data, _dead()]):
        capsys.readouterr()
        code, _, err = _run(argv, capsys)
        assert code == 1
        assert "not enrolled" in err
        assert err.count("\n") == 1


def test_enroll_takes_hub_repeated_and_names_each_url_that_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`enroll --hub A --hub B`: with neither answering, one line naming both; a URL
    given twice is refused before any request."""
    data = str(tmp_path / "office")
    assert main(["init", "--dir", data]) == 0
    capsys.readouterr()
    code_text = EnrollmentCode.create(HUB.public, 12345).text()
    one, two = _dead(), _dead()
    argv = ["enroll", "--dir", data, "--hub", one, "--hub", two, "--code", code_text]
    code, _, err = _run(argv, capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert "not reachable at any of its 2 URLs" in err
    assert one in err
    assert two in err
    argv = ["enroll", "--dir", data, "--hub", one, "--hub", one + "/", "--code", code_text]
    code, _, err = _run(argv, capsys)
    assert (code, err.count("\n")) == (1, 1)
    assert "given twice" in err


def test_the_upgrade_keeps_an_enrolled_nodes_url(tmp_path: Path) -> None:
    """A database enrolled before migration 0012 keeps its one URL as a list of one."""
    path = tmp_path / "node.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        run_migrations(conn, migrations()[:11], stamp=Stamp.UTC_DATETIME)
        conn.execute(
            "INSERT INTO enrollment (id, node_id, hub_url, hub_sign, hub_encrypt, certificate,"
            " enrolled_at) VALUES (1, 'caritas-nbg', 'https://hub.example.org', ?, ?, ?, 1)",
            (HUB.public.sign, HUB.public.encrypt, b"cert"),
        )
    finally:
        conn.close()
    deps = Deps(clock=FakeClock(), random=CountingRandom("upgrade"))
    store = NodeStore.open(path, keys_from("caritas-nbg"), deps, message_ttl=86400)
    try:
        state = store.sync.load_enrollment()
        assert state is not None
        assert (state.hub_urls, state.hub_url, state.hub_in_use) == (
            ("https://hub.example.org",),
            "https://hub.example.org",
            None,
        )
        assert state.hub_keys == HUB.public
        # Replacing the list changes the URLs only; the first is also `hub_url`.
        store.sync.set_hub_urls(["https://b.example.org", "https://a.example.org"])
        after = store.sync.load_enrollment()
        assert after == EnrollmentState(
            node_id="caritas-nbg",
            hub_urls=("https://b.example.org", "https://a.example.org"),
            hub_keys=HUB.public,
            certificate=b"cert",
            enrolled_at=1,
        )
        row = store.ctx.one("SELECT hub_url FROM enrollment")
        assert row == {"hub_url": "https://b.example.org"}
    finally:
        store.close()


def test_a_node_without_enrollment_has_no_urls_to_set(tmp_path: Path) -> None:
    """set_hub_urls on a fresh database: NotEnrolled, nothing written."""
    deps = Deps(clock=FakeClock(), random=CountingRandom("fresh"))
    store = NodeStore.open(tmp_path / "node.db", keys_from("caritas-nbg"), deps, message_ttl=86400)
    try:
        with pytest.raises(NotEnrolled):
            store.sync.set_hub_urls(["https://hub.example.org"])
        assert store.sync.load_enrollment() is None
    finally:
        store.close()
