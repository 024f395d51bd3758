"""`mbe-hub token list|revoke`: ids instead of tokens, revocation effective at once."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from hub.app import create_app
from hub.errors import InvalidInputError, NotFoundError
from hub.settings import HubSettings
from hub.stats.routes import add_stats
from hub.tokens import create_token, list_tokens, revoke_token, token_hash, token_id
from tests.clocks import clocked
from tests.hub.conftest import FakeClock
from tests.hub.engines import hub_db
from tests.hub.proc import run_cli


def _create(data_dir: Path, org: str) -> tuple[str, str]:
    out = run_cli("token", "create", "--dir", str(data_dir), "--role", "coordinator", "--org", org)
    assert out.returncode == 0, out.stderr
    ident = out.stderr.rsplit(":", 1)[-1].strip()
    return out.stdout.strip(), ident


def test_list_shows_ids_never_tokens_and_revoke_marks_one(tmp_path: Path) -> None:
    """list prints id, role, org and dates but no token; revoke by id revokes only that one."""
    data_dir = tmp_path / "hub"
    assert run_cli("init", "--dir", str(data_dir)).returncode == 0
    for name, org in (("AWO Fürth", "AWO"), ("Caritas Köln", "Caritas")):
        out = run_cli("site", "add", "--dir", str(data_dir), "--name", name, "--org", org)
        assert out.returncode == 0, out.stderr
    awo, awo_id = _create(data_dir, "AWO")
    caritas, caritas_id = _create(data_dir, "Caritas")
    assert awo_id == token_id(token_hash(awo))
    listed = run_cli("token", "list", "--dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    assert awo not in listed.stdout
    assert caritas not in listed.stdout
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(rows) == {awo_id, caritas_id}
    assert "coordinator" in rows[awo_id]
    assert "AWO" in rows[awo_id]
    assert rows[awo_id].rstrip().endswith("-")

    out = run_cli("token", "revoke", "--dir", str(data_dir), awo_id)
    assert out.returncode == 0, out.stderr
    assert f"token {awo_id} revoked" in out.stdout
    again = run_cli("token", "revoke", "--dir", str(data_dir), awo_id)
    assert "already revoked" in again.stdout
    rows = {
        line.split()[0]: line
        for line in run_cli("token", "list", "--dir", str(data_dir)).stdout.splitlines()[1:]
    }
    assert rows[awo_id].count("UTC") == 2  # created and revoked
    assert rows[caritas_id].rstrip().endswith("-")
    with sqlite3.connect(data_dir / "hub.db") as conn:
        actions = conn.execute("SELECT action, detail FROM audit_log WHERE action = 'token.revoke'")
        assert actions.fetchall() == [("token.revoke", awo_id)]


def test_revoke_refuses_unknown_and_malformed_ids(tmp_path: Path) -> None:
    """An unknown id, a malformed id or an unknown token is one line, exit 1."""
    data_dir = tmp_path / "hub"
    assert run_cli("init", "--dir", str(data_dir)).returncode == 0
    for name in ("0123456789ab", "xyz", "mbeh_nonexistent"):
        out = run_cli("token", "revoke", "--dir", str(data_dir), name)
        assert out.returncode == 1
        assert "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_revoke_by_the_token_itself(settings: HubSettings) -> None:
    """The operator holding a token may pass it instead of its id."""
    db = hub_db(settings)
    try:
        token = create_token(db, "coordinator", None, 1, os.urandom(32))
        record, was_live = revoke_token(db, token, 2)
        assert (record.token_id, record.revoked, was_live) == (token_id(token_hash(token)), 2, True)
        assert [t.revoked for t in list_tokens(db)] == [2]
        with pytest.raises(NotFoundError):
            revoke_token(db, "mbeh_other", 3)
        with pytest.raises(InvalidInputError):
            revoke_token(db, "ABC", 3)
    finally:
        db.close()


async def test_revocation_ends_api_access_and_dashboard_sessions_at_once(
    settings: HubSettings, clock: FakeClock, aiohttp_client: AiohttpClient
) -> None:
    """Once revoked, the bearer token gets 401 and its session cookie is sent to the login."""
    http = await aiohttp_client(create_app(settings, deps=clocked(clock), extensions=[add_stats]))
    db = hub_db(settings)
    try:
        token = create_token(db, "coordinator", None, clock.now(), os.urandom(32))
        other = create_token(db, "coordinator", None, clock.now(), os.urandom(32))
    finally:
        db.close()
    login = await http.post("/dashboard/login", data={"token": token}, allow_redirects=False)
    assert login.status == 303
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/coordinator/v1/periods", headers=bearer)).status == 200
    dashboard = await http.get("/dashboard", allow_redirects=False)
    assert dashboard.status == 200

    db = hub_db(settings)
    try:
        revoke_token(db, token_id(token_hash(token)), clock.now())
        sessions = db.execute("SELECT count(*) FROM coordinator_sessions").fetchone()[0]
    finally:
        db.close()
    assert sessions == 0
    assert (await http.get("/coordinator/v1/periods", headers=bearer)).status == 401
    assert (await http.get("/dashboard", allow_redirects=False)).status == 303
    still = {"Authorization": f"Bearer {other}"}
    assert (await http.get("/coordinator/v1/periods", headers=still)).status == 200
