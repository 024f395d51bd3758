"""The signed directory: ETag, revocation bumps the version, re-signing before expiry."""

from __future__ import annotations

from hub.directory import KEEP_VERSIONS, next_version
from hub.keyfile import read_keys
from hub.maintenance import run_once
from hub.sites import revoke_site
from protocol.documents import Directory
from tests.hub.client import problem_kind, referral
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db


async def _directory(hub: Hub, client_node: object, etag: str | None = None) -> object:
    extra = {"If-None-Match": etag} if etag else None
    return await hub.client(client_node).signed("GET", "/v1/directory", extra_headers=extra)  # type: ignore[arg-type]  # a Node


async def test_etag_and_not_modified(hub: Hub) -> None:
    """The directory carries ETag "v<version>"; the same ETag back gets an empty 304."""
    node = await hub.node("Etag Office")
    resp = await hub.client(node).signed("GET", "/v1/directory")
    assert resp.status == 200
    d = Directory.verify(await resp.read(), node.hub_keys, now=hub.clock.now())
    assert resp.headers["ETag"] == f'"v{d.version}"'
    again = await hub.client(node).signed(
        "GET", "/v1/directory", extra_headers={"If-None-Match": resp.headers["ETag"]}
    )
    assert again.status == 304
    assert await again.read() == b""


async def test_revocation_refuses_the_node_and_bumps_the_version(hub: Hub) -> None:
    """After revoke the directory is newer and lists the node as revoked; the node is refused."""
    a, b = await hub.node("Stays Office"), await hub.node("Goes Office")
    first = await hub.client(a).signed("GET", "/v1/directory")
    before = Directory.verify(await first.read(), a.hub_keys, now=hub.clock.now())
    db = hub_db(hub.settings)
    version = revoke_site(
        db, read_keys(hub.settings.key_path), hub.settings, b.node_id, hub.clock.now()
    )
    db.close()
    resp = await hub.client(a).signed(
        "GET", "/v1/directory", extra_headers={"If-None-Match": first.headers["ETag"]}
    )
    assert resp.status == 200
    after = Directory.verify(
        await resp.read(), a.hub_keys, now=hub.clock.now(), held_version=before.version
    )
    assert after.version == version > before.version
    entry = after.office(b.node_id)
    assert entry is not None
    assert entry.status == "revoked"
    refused = await hub.client(b).signed("GET", "/v1/inbox")
    assert (refused.status, problem_kind(await refused.json())) == (403, "revoked-node")
    # Mail to a revoked node is refused as well.
    env = referral(a, b.node_id, b.keys.public, now=hub.clock.now())
    ans = await hub.client(a).upload([env.encode()])
    assert problem_kind(ans["rejected"][0]) == "unknown-recipient"


async def test_directory_is_resigned_before_it_expires(hub: Hub) -> None:
    """A maintenance pass close to expiry publishes a new, later-expiring version."""
    node = await hub.node("Resign Office")
    resp = await hub.client(node).signed("GET", "/v1/directory")
    old = Directory.verify(await resp.read(), node.hub_keys, now=hub.clock.now())
    hub.clock.advance(old.expires - hub.clock.now() - hub.settings.directory.resign_before + 1)
    await run_once(hub.app, hub.clock.now())
    resp = await hub.client(node).signed("GET", "/v1/directory")
    new = Directory.verify(await resp.read(), node.hub_keys, now=hub.clock.now())
    assert new.version > old.version
    assert new.expires > old.expires
    assert new.offices == old.offices


def _versions(hub: Hub) -> list[int]:
    with hub_db(hub.settings) as conn:
        return [
            r[0] for r in conn.execute("SELECT version FROM directory_versions ORDER BY version")
        ]


async def test_versions_never_go_backwards_after_an_old_database_comes_back(hub: Hub) -> None:
    """With the newest rows gone (an older copy restored), the next version is still higher."""
    node = await hub.node("Holding Office")
    for name in ("Second Office", "Third Office"):
        hub.clock.advance(60)
        await hub.node(name)
    held = max(_versions(hub))
    resp = await hub.client(node).signed("GET", "/v1/directory")
    assert Directory.verify(await resp.read(), node.hub_keys, now=hub.clock.now()).version == held
    with hub_db(hub.settings) as conn:
        conn.execute("DELETE FROM directory_versions WHERE version > ?", (min(_versions(hub)),))
    hub.clock.advance(3600)
    await hub.node("Fourth Office")
    resp = await hub.client(node).signed("GET", "/v1/directory")
    fresh = Directory.verify(
        await resp.read(), node.hub_keys, now=hub.clock.now(), held_version=held
    )
    assert fresh.version > held


def test_next_version_follows_the_clock_and_never_repeats() -> None:
    """The version is at least the time, and one more than the newest when the clock lags."""
    assert next_version(0, 1_800_000_000) == 1_800_000_000
    assert next_version(1_800_000_000, 1_800_000_000) == 1_800_000_001
    assert next_version(1_800_000_050, 1_799_000_000) == 1_800_000_051


async def test_only_the_newest_versions_are_kept(hub: Hub) -> None:
    """However the versions are spaced, the newest KEEP_VERSIONS stay and no others."""
    for i in range(KEEP_VERSIONS + 3):
        hub.clock.advance(1000 * (i % 3))
        await hub.node(f"Office {i}")
    kept = _versions(hub)
    assert len(kept) == KEEP_VERSIONS
    assert kept == sorted(kept)
