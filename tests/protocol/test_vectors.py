"""Known-answer vectors in both directions.

Regenerating must reproduce every committed file byte for byte (the encoders did
not change), and the committed bytes must decode, verify and open to the
expected values (the decoders did not change). Either change fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol.cellkeys import RecordKeys
from protocol.documents import Directory, KeyRotation, NodeCertificate
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import Envelope, open_envelope
from protocol.errors import BadSignatureError
from protocol.keys import PrivateKeys, PublicKeys
from protocol.requests import canonical, parse_request_headers, verify_request
from tests.protocol import factories as f
from tests.protocol import vectors

FILES = sorted(vectors.build())


def party(name: str) -> PrivateKeys:
    """Keys of a party, read from the committed keys.json (not from the factories)."""
    p = vectors.load("keys.json")["parties"][name]
    return PrivateKeys(bytes.fromhex(p["sign_seed"]), bytes.fromhex(p["encrypt_secret"]))


@pytest.mark.parametrize("name", FILES)
def test_regenerated_vectors_match_committed_files(name: str) -> None:
    """The generator reproduces each committed vector file exactly."""
    committed = (vectors.VECTOR_DIR / name).read_text(encoding="utf-8")
    assert vectors.render(vectors.build()[name]) == committed


def test_vector_check_command_reports_no_difference() -> None:
    """`python -m tests.protocol.vectors` (check mode) exits 0 on the committed files."""
    assert vectors.main([]) == 0


def test_committed_keys_derive_their_public_keys_and_fingerprints() -> None:
    """Each seed yields the committed public keys and fingerprint text."""
    for name, p in vectors.load("keys.json")["parties"].items():
        public = party(name).public
        assert public.sign.hex() == p["sign_public"]
        assert public.encrypt.hex() == p["encrypt_public"]
        assert public.fingerprint_bytes().hex() == p["fingerprint_bytes"]
        assert public.fingerprint() == p["fingerprint"]


@pytest.mark.parametrize("case", vectors.load("envelope.json")["cases"], ids=lambda c: c["type"])
def test_committed_envelopes_open_to_the_recorded_message(case: dict[str, Any]) -> None:
    """Each committed envelope opens with the recipient's key to the recorded inner message."""
    env = Envelope.decode(bytes.fromhex(case["envelope"]))
    sender = party(case["sender"])
    msg = open_envelope(
        env, party(case["recipient"]), case["recipient"], sender.public, now=case["open_at"]
    )
    expected = case["inner"]
    assert (msg.type, msg.msg_id, msg.sender, msg.recipient) == (
        case["type"],
        expected["id"],
        case["sender"],
        case["recipient"],
    )
    assert (msg.version, msg.created, msg.expires) == (
        expected["v"],
        expected["created"],
        expected["exp"],
    )
    assert msg.payload.to_map() == expected["payload"]
    assert msg.signed_part().hex() == case["signed_part"]


@pytest.mark.parametrize("case", vectors.load("envelope.json")["cases"], ids=lambda c: c["type"])
def test_committed_inner_signatures_verify(case: dict[str, Any]) -> None:
    """The recorded Ed25519 signature verifies over the recorded signed bytes, and only those."""
    public = party(case["sender"]).public
    signed = bytes.fromhex(case["signed_part"])
    signature = bytes.fromhex(case["signature"])
    public.verify(signed, signature)
    assert signed.startswith(b"mbe-sync/inner/v1\x00")
    with pytest.raises(BadSignatureError):
        public.verify(signed + b"\x00", signature)


def test_committed_certificate_verifies() -> None:
    """The committed node certificate verifies with the hub's key to the expected fields."""
    v = vectors.load("documents.json")["node_cert"]
    cert = NodeCertificate.verify(
        bytes.fromhex(v["signed"]), party(v["signer"]).public, now=v["verify_at"]
    )
    assert cert == f.certificate()
    assert cert.keys == party("office-a").public


def test_committed_directory_verifies() -> None:
    """The committed directory verifies with the hub's key, with its version and offices."""
    v = vectors.load("documents.json")["directory"]
    d = Directory.verify(bytes.fromhex(v["signed"]), party(v["signer"]).public, now=v["verify_at"])
    assert d.version == v["version"]
    assert d == f.directory()
    assert [o.node_id for o in d.offices] == ["office-a", "office-b", "office-c"]


def test_committed_key_rotation_verifies() -> None:
    """The committed rotation verifies with the old key and names the new keys."""
    v = vectors.load("documents.json")["key_rotation"]
    rot = KeyRotation.verify(bytes.fromhex(v["signed"]), party(v["signer"]).public)
    assert rot.new_keys == party(v["new_keys"]).public
    assert rot.node_id == "office-a"


@pytest.mark.parametrize("case", vectors.load("requests.json")["cases"], ids=lambda c: c["method"])
def test_committed_request_signatures_verify(case: dict[str, Any]) -> None:
    """The committed headers parse and verify over the recorded canonical string."""
    body = bytes.fromhex(case["body"])
    signed = parse_request_headers(case["headers"])
    assert (signed.node_id, signed.timestamp, signed.nonce) == (
        case["node_id"],
        case["timestamp"],
        case["nonce"],
    )
    text = canonical(
        case["method"], case["path"], body, case["node_id"], case["timestamp"], case["nonce"]
    )
    assert text.decode() == case["canonical"]
    verify_request(
        case["method"],
        case["path"],
        body,
        signed,
        party(case["signer"]).public,
        now=case["timestamp"],
    )


def test_committed_enrollment_code_parses_and_derives() -> None:
    """The committed code text parses to the secret and derives the verifier and lookup id."""
    v = vectors.load("enrollment.json")
    code = EnrollmentCode.parse(v["code"])
    assert code.secret == v["secret"]
    assert code.fingerprint.hex() == v["fingerprint"]
    assert code.verifier().hex() == v["verifier"]
    assert code.lookup_id() == v["lookup_id"]
    code.check_hub(party(v["hub"]).public)


def test_committed_enrollment_request_decodes_and_verifies() -> None:
    """The committed request decodes, carries the node's keys and verifies against the verifier."""
    v = vectors.load("enrollment.json")
    req = EnrollmentRequest.decode(bytes.fromhex(v["request"]))
    assert req.lookup_id == v["lookup_id"]
    assert req.keys == party(v["node"]).public
    assert req.statement().hex() == v["statement"]
    req.verify(bytes.fromhex(v["verifier"]))
    assert isinstance(req.keys, PublicKeys)


def test_committed_record_keys_derive_from_the_secret() -> None:
    """Record keys follow from secret, period, cell and record exactly as committed."""
    vec = vectors.load("cellkeys.json")
    secret = bytes.fromhex(vec["secret"])
    for case in vec["cases"]:
        assert RecordKeys(secret, case["period"]).key(case["cell"], case["record"]) == case["key"]
    keys = {c["key"] for c in vec["cases"]}
    assert len(keys) == len(vec["cases"])  # another cell or period, another key
