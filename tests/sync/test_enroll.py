"""`enroll`: code first, hub keys checked against the code, only verified answers saved."""

from __future__ import annotations

import pytest

from demo.processes import free_port
from node.sync.enroll import enroll
from node.sync.errors import (
    AlreadyEnrolled,
    BadEnrollmentCode,
    EnrollmentRefused,
    HubKeyMismatch,
    HubUnreachable,
)
from protocol.documents import Directory, NodeCertificate
from tests.sync.fakehub import FakeHub, fixed_keys
from tests.sync.fakes import FakeStore
from tests.sync.helpers import fast_settings


async def test_enroll_saves_verified_state(hub: FakeHub, hub_url: str) -> None:
    """A good code yields a saved enrollment (hub keys, certificate) and the directory."""
    code = hub.add_site("diakonie-erlangen", name="Diakonie Erlangen", org="Diakonie")
    store, keys = FakeStore(), fixed_keys(30)
    state = await enroll(fast_settings(), store, keys, hub_url + "/", code.lower())
    assert state.node_id == "diakonie-erlangen"
    assert state.hub_url == hub_url
    assert store.enrollment == state
    assert state.hub_keys == hub.keys.public
    cert = NodeCertificate.verify(state.certificate, hub.keys.public, now=state.enrolled_at)
    assert cert.keys == keys.public
    assert store.directory is not None
    directory = Directory.verify(store.directory, hub.keys.public, now=state.enrolled_at)
    assert directory.office("diakonie-erlangen") is not None
    assert store.state["directory_version"] == str(directory.version)


async def test_typo_is_caught_before_any_request(hub: FakeHub, hub_url: str) -> None:
    """A mistyped code fails with BadEnrollmentCode and the hub sees no request."""
    code = hub.add_site("diakonie-erlangen")
    typo = ("A" if code[0] != "A" else "B") + code[1:]
    with pytest.raises(BadEnrollmentCode, match="typo"):
        await enroll(fast_settings(), FakeStore(), fixed_keys(30), hub_url, typo)
    assert hub.requests == []


async def test_fingerprint_mismatch_is_refused_and_nothing_saved(
    hub: FakeHub, hub_url: str
) -> None:
    """A man in the middle presenting other keys is refused loudly; the store stays empty."""
    code = hub.add_site("diakonie-erlangen")
    hub.impostor = fixed_keys(66)
    store = FakeStore()
    with pytest.raises(HubKeyMismatch, match="man in the middle"):
        await enroll(fast_settings(), store, fixed_keys(30), hub_url, code)
    assert store.enrollment is None
    assert store.directory is None
    assert store.events == []


async def test_used_code_is_refused(hub: FakeHub, hub_url: str) -> None:
    """A code works once: the second node gets EnrollmentRefused naming the problem."""
    code = hub.add_site("diakonie-erlangen")
    await enroll(fast_settings(), FakeStore(), fixed_keys(30), hub_url, code)
    store = FakeStore()
    with pytest.raises(EnrollmentRefused, match="used-code"):
        await enroll(fast_settings(), store, fixed_keys(31), hub_url, code)
    assert store.enrollment is None


async def test_unknown_code_is_refused(hub: FakeHub, hub_url: str) -> None:
    """A well-formed code the hub never issued is refused by the hub."""
    other = FakeHub()
    code = other.add_site("somewhere-else")
    other.codes.clear()
    with pytest.raises(EnrollmentRefused, match="unknown-code"):
        await enroll(fast_settings(), FakeStore(), fixed_keys(30), hub_url, code)


async def test_unreachable_hub_is_reported(hub: FakeHub) -> None:
    """No hub at the URL: HubUnreachable, nothing saved."""
    code = hub.add_site("diakonie-erlangen")
    port = free_port()
    store = FakeStore()
    with pytest.raises(HubUnreachable, match="not reachable"):
        await enroll(fast_settings(), store, fixed_keys(30), f"http://127.0.0.1:{port}", code)
    assert store.enrollment is None


async def test_enrolling_twice_is_refused(hub: FakeHub, hub_url: str) -> None:
    """An enrolled node does not silently replace its identity."""
    code = hub.add_site("diakonie-erlangen")
    store = FakeStore()
    await enroll(fast_settings(), store, fixed_keys(30), hub_url, code)
    code2 = hub.add_site("diakonie-erlangen-2")
    with pytest.raises(AlreadyEnrolled, match="already enrolled as diakonie-erlangen"):
        await enroll(fast_settings(), store, fixed_keys(30), hub_url, code2)


async def test_a_lost_answer_is_recovered_by_running_enroll_again(
    hub: FakeHub, hub_url: str
) -> None:
    """The hub committed but its answer was lost: nothing saved; a re-run with the code works."""
    code = hub.add_site("diakonie-erlangen")
    hub.lose_enroll_answers = 1
    store, keys = FakeStore(), fixed_keys(30)
    with pytest.raises(HubUnreachable):
        await enroll(fast_settings(), store, keys, hub_url, code)
    assert (store.enrollment, store.directory) == (None, None)
    state = await enroll(fast_settings(), store, keys, hub_url, code)
    assert state.node_id == "diakonie-erlangen"
    assert store.enrollment == state
    assert store.directory is not None
