"""Upload, fetch, acknowledge: idempotency, isolation between inboxes, limits."""

from __future__ import annotations

from hub.auth import NonceMemory, Prechecked, record_nonce
from hub.errors import Problem
from hub.keyfile import read_keys
from hub.sites import revoke_site
from hub.storage.db import write
from protocol.encoding import pack
from protocol.envelope import Envelope
from protocol.requests import SignedRequest
from tests.hub.client import Node, problem_kind, referral
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db


async def _pair(hub: Hub) -> tuple[Node, Node]:
    return await hub.node("Office A"), await hub.node("Office B")


def _to(sender: Node, recipient: Node, hub: Hub, **kw: object) -> Envelope:
    return referral(sender, recipient.node_id, recipient.keys.public, now=hub.clock.now(), **kw)  # type: ignore[arg-type]  # test kwargs


async def test_upload_then_fetch_returns_the_same_bytes(hub: Hub) -> None:
    """The recipient fetches exactly the envelope bytes the sender uploaded."""
    a, b = await _pair(hub)
    env = _to(a, b, hub).encode()
    ans = await hub.client(a).upload([env])
    assert ans["accepted"] == [Envelope.decode(env).msg_id]
    page = await hub.client(b).fetch()
    assert [m["envelope"] for m in page["messages"]] == [env]
    assert page["more"] is False


async def test_same_id_same_bytes_is_accepted_again(hub: Hub) -> None:
    """A retried upload is accepted again and queued only once."""
    a, b = await _pair(hub)
    env = _to(a, b, hub).encode()
    await hub.client(a).upload([env])
    ans = await hub.client(a).upload([env, env])
    msg_id = Envelope.decode(env).msg_id
    assert ans == {"accepted": [msg_id, msg_id], "rejected": []}
    assert len((await hub.client(b).fetch())["messages"]) == 1


async def test_same_id_other_bytes_is_a_conflict(hub: Hub) -> None:
    """Another envelope under a known id is rejected as conflict, before and after delivery."""
    a, b = await _pair(hub)
    first = _to(a, b, hub)
    other = _to(a, b, hub, msg_id=first.msg_id).encode()
    await hub.client(a).upload([first.encode()])
    ans = await hub.client(a).upload([other])
    assert ans["accepted"] == []
    assert [(r["id"], problem_kind(r)) for r in ans["rejected"]] == [(first.msg_id, "conflict")]
    await hub.client(b).ack([first.msg_id])
    again = await hub.client(a).upload([other])
    assert problem_kind(again["rejected"][0]) == "conflict"
    # The original, re-sent after delivery, is acknowledged but not delivered twice.
    assert (await hub.client(a).upload([first.encode()]))["accepted"] == [first.msg_id]
    assert (await hub.client(b).fetch())["messages"] == []


async def test_another_node_cannot_fetch_or_ack_my_inbox(hub: Hub) -> None:
    """Node C sees nothing of B's inbox and its acks for B's messages delete nothing."""
    a, b = await _pair(hub)
    c = await hub.node("Office C")
    env = _to(a, b, hub)
    await hub.client(a).upload([env.encode()])
    assert (await hub.client(c).fetch())["messages"] == []
    assert await hub.client(c).ack([env.msg_id]) == 0
    assert await hub.client(a).ack([env.msg_id]) == 0
    # Signing as B with C's key does not work either.
    resp = await hub.client(c).signed("GET", "/v1/inbox", node_id=b.node_id)
    assert resp.status == 401
    assert [m["id"] for m in (await hub.client(b).fetch())["messages"]] == [env.msg_id]


async def test_ack_deletes_the_ciphertext(hub: Hub) -> None:
    """After the ack the envelope is gone from the inbox and from the database."""
    a, b = await _pair(hub)
    env = _to(a, b, hub)
    await hub.client(a).upload([env.encode()])
    assert await hub.client(b).ack([env.msg_id]) == 1
    assert (await hub.client(b).fetch())["messages"] == []
    with hub_db(hub.settings) as conn:
        assert conn.execute("SELECT count(*) FROM queue").fetchone() == (0,)
        row = conn.execute("SELECT acked FROM relay_log WHERE msg_id = ?", (env.msg_id,))
        assert row.fetchone() == (hub.clock.now(),)


async def test_fetch_pages_with_a_cursor(hub: Hub) -> None:
    """Fetching with `after` and `limit` walks the inbox in order without gaps."""
    a, b = await _pair(hub)
    envs = [_to(a, b, hub) for _ in range(5)]
    await hub.client(a).upload([e.encode() for e in envs])
    seen: list[str] = []
    after = 0
    while True:
        page = await hub.client(b).fetch(after=after, limit=2)
        seen += [m["id"] for m in page["messages"]]
        after = page["next"]
        if not page["more"]:
            break
    assert seen == [e.msg_id for e in envs]


async def test_upload_rules_per_envelope(hub: Hub) -> None:
    """Wrong sender, unknown recipient, past or too distant expiry are each rejected."""
    a, b = await _pair(hub)
    now = hub.clock.now()
    forged = referral(b, a.node_id, a.keys.public, now=now)
    stranger = referral(a, "nobody-here", b.keys.public, now=now)
    old = referral(a, b.node_id, b.keys.public, now=now - 10 * 86400, ttl=86400)
    far = referral(a, b.node_id, b.keys.public, now=now, ttl=200 * 86400)
    good = _to(a, b, hub)
    ans = await hub.client(a).upload([e.encode() for e in (forged, stranger, old, far, good)])
    assert ans["accepted"] == [good.msg_id]
    kinds = {r["id"]: problem_kind(r) for r in ans["rejected"]}
    assert kinds == {
        forged.msg_id: "forbidden",
        stranger.msg_id: "unknown-recipient",
        old.msg_id: "expired",
        far.msg_id: "too-far-expiry",
    }


async def test_batch_and_body_limits(hub: Hub) -> None:
    """Too many envelopes, too big a body, or an undecodable envelope refuse the upload."""
    a, b = await _pair(hub)
    c = hub.client(a)
    env = _to(a, b, hub).encode()
    resp = await c.signed("POST", "/v1/messages", pack({"envelopes": [env] * 51}))
    assert (resp.status, problem_kind(await resp.json())) == (413, "too-large")
    resp = await c.signed("POST", "/v1/messages", pack({"envelopes": [b"\x00" * 1_100_000]}))
    assert (resp.status, problem_kind(await resp.json())) == (413, "too-large")
    resp = await c.signed("POST", "/v1/messages", pack({"envelopes": [b"junk"]}))
    assert (resp.status, problem_kind(await resp.json())) == (400, "malformed")
    resp = await c.signed("POST", "/v1/messages", pack({"wrong": 1}))
    assert (resp.status, problem_kind(await resp.json())) == (400, "malformed")
    resp = await c.signed("GET", "/v1/inbox?limit=0")
    assert (resp.status, problem_kind(await resp.json())) == (400, "malformed")


async def test_an_upload_records_its_nonce_once_and_only_for_an_enrolled_node(hub: Hub) -> None:
    """The upload's transaction inserts the nonce with the site check in one statement
    (`auth.record_nonce`): a replayed upload is replayed-nonce and stores nothing
    again; a node revoked after its request's pre-check is revoked-node, an unknown
    one unknown-node, and neither leaves a nonce behind."""
    a, b = await _pair(hub)
    body = pack({"envelopes": [_to(a, b, hub).encode()]})
    headers = hub.client(a).headers("POST", "/v1/messages", body)
    assert (await hub.http.post("/v1/messages", data=body, headers=headers)).status == 200
    again = await hub.http.post("/v1/messages", data=body, headers=headers)
    assert (again.status, problem_kind(await again.json())) == (401, "replayed-nonce")

    def pre(node_id: str, nonce: str) -> Prechecked:
        return Prechecked(SignedRequest(node_id, hub.clock.now(), nonce, b""), ())

    def refusal(node_id: str, nonce: str, nonces: NonceMemory | None = None) -> str:
        with hub_db(hub.settings) as db:
            try:
                with write(db, durable=False):
                    record_nonce(db, pre(node_id, nonce), nonces)
            except Problem as exc:
                return f"{exc.status} {exc.kind.value}"
            return "recorded"

    assert refusal(b.node_id, "n-1") == "recorded"
    assert refusal(b.node_id, "n-1") == "401 replayed-nonce"
    assert refusal("nobody-here", "n-2") == "401 unknown-node"
    pending = hub.add_site("Pending Office")
    assert refusal(pending.node_id, "n-3") == "401 unknown-node"
    held = NonceMemory(hub.settings.auth.max_skew)
    held.hold(pre(b.node_id, "n-4").signed, hub.clock.now())
    assert refusal(b.node_id, "n-4", held) == "401 replayed-nonce"

    with hub_db(hub.settings) as db:
        revoke_site(db, read_keys(hub.settings.key_path), hub.settings, b.node_id, 1)
    assert refusal(b.node_id, "n-5") == "403 revoked-node"
    with hub_db(hub.settings) as db:
        left = db.execute(
            "SELECT nonce FROM nonces WHERE nonce IN ('n-2', 'n-3', 'n-4', 'n-5')"
        ).fetchall()
    assert left == []
