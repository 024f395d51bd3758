"""Hub-signed documents: refusals of the directory, certificates and key rotations."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.documents import Directory, KeyRotation, NodeCertificate, OfficeEntry
from protocol.encoding import pack, unpack
from protocol.errors import (
    BadSignatureError,
    ExpiredError,
    InvalidCodeError,
    MalformedError,
    StaleError,
    UnknownTypeError,
)
from protocol.keys import keys_valid_at
from tests.protocol import factories as f

HUB = f.keys("hub")


def relabel(signed: bytes, kind: str) -> bytes:
    doc = unpack(signed)
    doc["doc"] = kind
    return pack(doc)


def test_directory_verifies_and_reports_rotation_overlap() -> None:
    """A fresh directory verifies; previous keys count only until their overlap ends."""
    d = Directory.verify(f.directory().sign(HUB), HUB.public, now=f.NOW, held_version=3)
    b = d.office("office-b")
    assert b is not None
    assert b.keys_valid_at(f.NOW) == (f.keys("office-b").public, f.keys("office-b-old").public)
    assert b.keys_valid_at(f.NOW + f.DAY) == (f.keys("office-b").public,)
    assert d.office("nobody") is None


def test_unsigned_directory_is_refused() -> None:
    """A directory with a zeroed or missing signature is refused."""
    doc = unpack(f.directory().sign(HUB))
    doc["sig"] = bytes(64)
    with pytest.raises(BadSignatureError):
        Directory.verify(pack(doc), HUB.public, now=f.NOW)
    del doc["sig"]
    with pytest.raises(MalformedError):
        Directory.verify(pack(doc), HUB.public, now=f.NOW)


def test_directory_from_the_wrong_signer_is_refused() -> None:
    """A directory signed by a node's key (not the hub's) is refused."""
    with pytest.raises(BadSignatureError):
        Directory.verify(f.directory().sign(f.keys("office-a")), HUB.public, now=f.NOW)


def test_directory_older_than_the_held_one_is_refused() -> None:
    """Version 3 is refused when version 4 is held."""
    with pytest.raises(StaleError):
        Directory.verify(f.directory(version=3).sign(HUB), HUB.public, now=f.NOW, held_version=4)


def test_expired_directory_is_refused() -> None:
    """A directory is refused from its expiry on."""
    signed = f.directory(expires=f.NOW).sign(HUB)
    with pytest.raises(ExpiredError):
        Directory.verify(signed, HUB.public, now=f.NOW)


def test_directory_listing_an_office_twice_is_refused() -> None:
    """Two entries for one node id make the directory malformed."""
    d = dataclasses.replace(f.directory(), offices=(f.office("office-a"), f.office("office-a")))
    with pytest.raises(MalformedError, match="twice"):
        Directory.verify(d.sign(HUB), HUB.public, now=f.NOW)


def test_expired_certificate_is_refused() -> None:
    """A node certificate is refused at its expiry and accepted before."""
    signed = f.certificate(expires=f.NOW + 10).sign(HUB)
    assert NodeCertificate.verify(signed, HUB.public, now=f.NOW + 9).node_id == "office-a"
    with pytest.raises(ExpiredError):
        NodeCertificate.verify(signed, HUB.public, now=f.NOW + 10)


def test_certificate_cannot_pass_as_a_directory() -> None:
    """Signature domains are separate: certificate bytes never verify as a directory."""
    signed = f.certificate().sign(HUB)
    with pytest.raises(UnknownTypeError):
        Directory.verify(signed, HUB.public, now=f.NOW)
    with pytest.raises(BadSignatureError):
        Directory.verify(relabel(signed, "directory"), HUB.public, now=f.NOW)


def test_key_rotation_cannot_pass_as_a_certificate() -> None:
    """A node's signed rotation, relabelled, does not verify as a hub certificate of that node."""
    signed = f.rotation().sign(f.keys("office-a"))
    with pytest.raises(BadSignatureError):
        NodeCertificate.verify(relabel(signed, "node-cert"), f.keys("office-a").public, now=f.NOW)


def test_key_rotation_verifies_only_with_the_old_key() -> None:
    """A rotation verifies with the old key and is refused with any other."""
    signed = f.rotation().sign(f.keys("office-a"))
    assert KeyRotation.verify(signed, f.keys("office-a").public) == f.rotation()
    with pytest.raises(BadSignatureError):
        KeyRotation.verify(signed, f.keys("office-a-new").public)


@pytest.mark.parametrize(
    ("field", "value"),
    [("services", ["mbe", "astrology"]), ("status", "suspended"), ("languages", ["DE"])],
)
def test_office_entry_refuses_values_outside_its_code_lists(field: str, value: object) -> None:
    """Services, status and languages of an office must come from their code lists."""
    m = unpack(pack(f.office("office-a").to_map()))
    m[field] = value
    with pytest.raises(MalformedError) as info:
        OfficeEntry.from_map(m)
    if field != "languages":  # languages are checked by pattern, not by list
        assert isinstance(info.value, InvalidCodeError)


def test_keys_valid_at_is_the_one_overlap_rule() -> None:
    """Previous keys count strictly before `previous_until`, and only when there are some."""
    cur, old = f.keys("office-b").public, f.keys("office-b-old").public
    assert keys_valid_at(cur, old, 100, 99) == (cur, old)
    assert keys_valid_at(cur, old, 100, 100) == (cur,)
    assert keys_valid_at(cur, None, 100, 0) == (cur,)
