"""Key rotation end to end: a hub and two offices as real processes (about 20 s).

Order of events, chosen so that one flow covers every promise of docs/node.md:
B is stopped while A rotates (A's service keeps running and must pick up the
new keys by itself); then, with the hub down, B starts with its old directory
and refers a client to A, so the envelope is sealed to A's *old* key; once the
hub is back, A must open it with node.key.previous. A's service still signs
with the old key until it restarts (accepted during the overlap); after the
restart, referrals flow both ways with the new keys.
"""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from demo.cluster import Cluster, Node
from demo.processes import cli
from hub.keyfile import read_keys
from protocol.documents import Directory
from protocol.keys import PrivateKeys, PublicKeys
from tests.e2e.conftest import FAST_SYNC, OFFICE_A, OFFICE_B, wait_for
from tests.e2e.helpers import consented_referral, in_state, status


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start_hub()
        c.add_node("a", OFFICE_A, start=False, sync=FAST_SYNC)
        c.add_node("b", OFFICE_B, start=False, sync=FAST_SYNC)
        for node in c.nodes.values():
            node.service.start()
        c.wait_directory()
        yield c
    finally:
        for node in c.nodes.values():
            node.service.kill()
        if c.hub is not None:
            c.hub.kill()


def keys_of(node: Node, name: str = "node.key") -> PrivateKeys:
    return PrivateKeys.from_bytes((node.service.data_dir / name).read_bytes())


def listed_keys(cluster: Cluster, holder: Node, office: Node) -> tuple[PublicKeys, ...]:
    """The keys of `office` in the directory `holder` keeps (its database), current first."""
    with closing(sqlite3.connect(holder.service.data_dir / "node.db", timeout=10)) as conn:
        data = conn.execute("SELECT data FROM directory WHERE id = 1").fetchone()[0]
    hub_public = read_keys(cluster.hub_dir / "hub.key").public
    entry = Directory.verify(bytes(data), hub_public, now=int(time.time())).office(office.node_id)
    assert entry is not None
    return entry.keys_valid_at(int(time.time()))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_rotation_keeps_mail_flowing_both_ways(cluster: Cluster) -> None:
    """A rotates while running; mail sealed to its old key still opens; both directions work."""
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    hub = cluster.hub
    assert hub is not None
    old = keys_of(a)

    b.service.stop()
    out = cli("node", "keys", "rotate", "--dir", str(a.service.data_dir))
    assert "restart" in out
    new = keys_of(a)
    assert new != old
    assert keys_of(a, "node.key.previous") == old
    assert mode(a.service.data_dir / "node.key") == 0o600
    assert mode(a.service.data_dir / "node.key.previous") == 0o600
    assert not (a.service.data_dir / "node.key.next").exists()
    # A's running service switches to the new keys on its own (push frame, then a cycle).
    wait_for(lambda: "keys.reloaded" in a.service.log_text(), "A's service reloads its keys")

    # B, with the hub down, still holds the old directory: it seals to A's old key.
    hub.stop()
    b.service.start()
    assert listed_keys(cluster, b, a) == (old.public,)
    before = consented_referral(b, a, family_name="Nowak")
    hub.start()
    wait_for(lambda: in_state(b, before["id"], "delivered"), "A opens mail sealed to its old key")
    assert listed_keys(cluster, b, a) == (new.public, old.public)

    # A has not restarted: its referrals carry the old signature, valid during the overlap.
    unrestarted = consented_referral(a, b, family_name="Kaya")
    wait_for(lambda: in_state(a, unrestarted["id"], "delivered"), "B accepts A's old signature")

    a.service.stop()
    a.service.start()
    to_b = consented_referral(a, b, family_name="Haddad")
    wait_for(lambda: in_state(a, to_b["id"], "delivered"), "A→B after the restart")
    to_a = consented_referral(b, a, family_name="Demir")
    wait_for(lambda: in_state(b, to_a["id"], "delivered"), "B→A sealed to A's new key")
    assert status(a)["refused_messages"] == 0
    assert status(b)["refused_messages"] == 0
    assert mode(a.service.data_dir / "node.key") == 0o600
