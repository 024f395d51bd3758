"""Enrollment by one-time code against a real hub."""

from __future__ import annotations

import pytest

from hub.context import PUBLISHER
from hub.directory import latest_version
from protocol.documents import Directory, NodeCertificate
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.errors import FingerprintMismatchError
from protocol.keys import PrivateKeys
from tests.hub.client import EnrollError, enroll
from tests.hub.conftest import Hub
from tests.hub.engines import hub_db


async def test_good_code_enrolls_and_returns_cert_keys_and_directory(hub: Hub) -> None:
    """A fresh code yields a hub-signed certificate for our keys, the hub keys and the
    newest directory; the next version, published right after, lists the new site."""
    new = hub.add_site("Caritas Köln")
    keys = PrivateKeys.generate()
    node = await enroll(hub.http, new.code, keys)
    assert node.node_id == new.node_id == "caritas-koeln"
    cert = NodeCertificate.verify(node.cert, node.hub_keys, now=hub.clock.now())
    assert cert.keys == keys.public
    answered = Directory.verify(node.directory, node.hub_keys, now=hub.clock.now())
    assert answered.office(node.node_id) is None  # the version before the enrollment
    await hub.app[PUBLISHER].flush()  # what the hub does right after the answer
    resp = await hub.client(node).signed("GET", "/v1/directory")
    directory = Directory.verify(await resp.read(), node.hub_keys, now=hub.clock.now())
    assert directory.version > answered.version
    entry = directory.office(node.node_id)
    assert entry is not None
    assert (entry.status, entry.keys) == ("active", keys.public)


async def test_code_works_only_once(hub: Hub) -> None:
    """A second enrollment with the same code is refused as used-code."""
    new = hub.add_site("Diakonie Bonn")
    await enroll(hub.http, new.code)
    with pytest.raises(EnrollError) as err:
        await enroll(hub.http, new.code)
    assert (err.value.status, err.value.kind) == (409, "used-code")


async def test_expired_code_is_refused(hub: Hub) -> None:
    """A code past its expiry (24 h by default) is refused as expired-code."""
    new = hub.add_site("AWO Essen")
    hub.clock.advance(24 * 3600 + 1)
    with pytest.raises(EnrollError) as err:
        await enroll(hub.http, new.code)
    assert (err.value.status, err.value.kind) == (410, "expired-code")


async def test_wrong_secret_is_refused(hub: Hub) -> None:
    """A proof made without the code's secret fails, whether or not the lookup id matches."""
    new = hub.add_site("DRK Bochum")
    real = EnrollmentCode.parse(new.code)
    wrong = EnrollmentCode(fingerprint=real.fingerprint, secret=real.secret ^ 1)
    with pytest.raises(EnrollError) as err:
        await enroll(hub.http, wrong.text())
    assert err.value.kind == "unknown-code"
    # Right lookup id, but the code signature made with another secret.
    keys = PrivateKeys.generate()
    forged = EnrollmentRequest.create(wrong, keys)
    forged = EnrollmentRequest(real.lookup_id(), forged.keys, forged.code_signature, b"\0" * 64)
    resp = await hub.http.post("/v1/enroll", data=forged.encode())
    assert resp.status == 403
    assert (await resp.json())["type"].endswith("/bad-signature")
    # The real code still works afterwards.
    assert (await enroll(hub.http, new.code)).node_id == new.node_id


async def test_node_refuses_a_hub_with_another_fingerprint(hub: Hub) -> None:
    """The node-side check refuses hub keys that do not match the code's fingerprint."""
    new = hub.add_site("IN VIA Dortmund")
    node = await enroll(hub.http, new.code)
    code = EnrollmentCode.parse(new.code)
    code.check_hub(node.hub_keys)
    with pytest.raises(FingerprintMismatchError):
        code.check_hub(PrivateKeys.generate().public)


async def test_malformed_enrollment_is_a_problem(hub: Hub) -> None:
    """Garbage and oversized enrollment bodies get malformed / too-large problems."""
    resp = await hub.http.post("/v1/enroll", data=b"\x93garbage")
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"].endswith("/malformed")
    resp = await hub.http.post("/v1/enroll", data=b"x" * 10_000)
    assert resp.status == 413
    assert (await resp.json())["type"].endswith("/too-large")


async def test_revoked_site_cannot_enroll(hub: Hub) -> None:
    """Revoking a site before it enrolled voids its code."""
    from hub.keyfile import read_keys
    from hub.sites import revoke_site

    new = hub.add_site("Revoked Early")
    db = hub_db(hub.settings)
    revoke_site(db, read_keys(hub.settings.key_path), hub.settings, new.node_id, hub.clock.now())
    db.close()
    with pytest.raises(EnrollError) as err:
        await enroll(hub.http, new.code)
    assert err.value.kind == "revoked-node"


async def test_retry_with_the_same_keys_gets_the_same_answer(hub: Hub) -> None:
    """A node that lost the answer re-enrolls with its keys and gets the same certificate."""
    new = hub.add_site("Caritas Lost Answer")
    keys = PrivateKeys.generate()
    first = await enroll(hub.http, new.code, keys)
    await hub.app[PUBLISHER].flush()
    hub.clock.advance(25 * 3600)  # even after the code's expiry
    again = await enroll(hub.http, new.code, keys)
    assert (again.node_id, again.cert, again.hub_keys) == (
        first.node_id,
        first.cert,
        first.hub_keys,
    )
    # The newest version, which lists it; the repeated answer publishes nothing new.
    directory = Directory.verify(again.directory, again.hub_keys, now=hub.clock.now())
    assert directory.office(again.node_id) is not None
    assert await hub.app[PUBLISHER].flush() is None
    db = hub_db(hub.settings)
    try:
        assert latest_version(db) == directory.version
    finally:
        db.close()
    with pytest.raises(EnrollError) as err:
        await enroll(hub.http, new.code, PrivateKeys.generate())
    assert (err.value.status, err.value.kind) == (409, "used-code")
