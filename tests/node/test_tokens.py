"""mbe-node token list|revoke: metadata only, and a revoked token is refused at once."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.cli import main
from node.clock import Deps
from node.config import load_keys, load_settings
from node.storage.access import TOKEN_ID_CHARS
from node.storage.store import NodeStore
from tests.node.conftest import ApiNode

Client = TestClient[web.Request, web.Application]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _listing(data: str, capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    code, out, _ = _cli(["token", "list", "--dir", data], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["APP", "ID", "CREATED", "LAST", "USED", "STATE"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


async def test_a_revoked_token_is_refused_by_the_running_node(
    client: Client, api_node: ApiNode, capsys: pytest.CaptureFixture[str]
) -> None:
    """The serving node accepts a token, and refuses it with 401 right after token revoke."""
    assert (await client.get("/api/v1/cases", headers=api_node.auth)).status == 200
    data = str(api_node.settings.data_dir)
    code, out, _ = _cli(["token", "revoke", "--dir", data, "test-app"], capsys)
    assert code == 0
    assert "Revoked the token of app test-app" in out
    resp = await client.get("/api/v1/cases", headers=api_node.auth)
    assert resp.status == 401


def test_token_list_shows_metadata_never_the_token(
    api_node: ApiNode, capsys: pytest.CaptureFixture[str]
) -> None:
    """list shows name, id, created, last used and state; no token appears in the output."""
    data = str(api_node.settings.data_dir)
    code, token, _ = _cli(["token", "create", "--dir", data, "--name", "fachverfahren"], capsys)
    assert code == 0
    code, out, _ = _cli(["token", "list", "--dir", data], capsys)
    assert token.strip() not in out
    assert api_node.token not in out
    listing = _listing(data, capsys)
    assert set(listing) == {"fachverfahren", "test-app"}
    token_id, created, last_used, state = listing["fachverfahren"]
    assert len(token_id) == TOKEN_ID_CHARS
    assert created.endswith("Z")
    assert (last_used, state) == ("never", "active")


async def test_last_use_is_tracked(
    client: Client, api_node: ApiNode, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a request, list shows when the token was last used."""
    assert (await client.get("/api/v1/cases", headers=api_node.auth)).status == 200
    last_used = _listing(str(api_node.settings.data_dir), capsys)["test-app"][2]
    assert last_used.startswith("2026-09-21T")


def test_revoke_by_id_audit_and_a_new_token_for_the_name(
    api_node: ApiNode, capsys: pytest.CaptureFixture[str]
) -> None:
    """Revoking by id works once; it is audited; the app can then get a new token."""
    data = str(api_node.settings.data_dir)
    token_id = _listing(data, capsys)["test-app"][0]
    assert _cli(["token", "revoke", "--dir", data, token_id], capsys)[0] == 0
    assert _listing(data, capsys)["test-app"][3] == "revoked"
    code, _, err = _cli(["token", "revoke", "--dir", data, token_id], capsys)
    assert (code, err.count("\n")) == (1, 1)
    assert "already revoked" in err
    code, _, err = _cli(["token", "revoke", "--dir", data, "nobody"], capsys)
    assert (code, err.count("\n")) == (1, 1)
    assert "no app token" in err
    code, out, _ = _cli(["token", "create", "--dir", data, "--name", "test-app"], capsys)
    assert code == 0
    assert out.strip() != api_node.token
    assert _listing(data, capsys)["test-app"][3] == "active"
    settings = load_settings(api_node.settings.data_dir)
    store = NodeStore.open(
        settings.db_path, load_keys(settings.key_path), Deps.system(), message_ttl=86400
    )
    try:
        actions = [r["action"] for r in store.access.audit_rows() if r["app"] == "test-app"]
    finally:
        store.close()
    assert actions == ["token.create", "token.revoke", "token.create"]
