"""Enrollment codes: typo detection, lookalikes, hub fingerprint check, proof of knowledge."""

from __future__ import annotations

import random

import pytest

from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.errors import BadEnrollmentCodeError, BadSignatureError, FingerprintMismatchError
from protocol.keys import PublicKeys
from tests.protocol import factories as f

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
HUB = f.keys("hub").public


def sample_codes(n: int) -> list[str]:
    rng = random.Random(20270115)
    return [EnrollmentCode.create(HUB, rng.getrandbits(60)).text() for _ in range(n)]


def test_code_text_round_trips() -> None:
    """text() has six groups of five and parses back to the same code."""
    code = f.enrollment_code()
    text = code.text()
    assert [len(g) for g in text.split("-")] == [5] * 6
    assert EnrollmentCode.parse(text) == code


def test_single_character_substitutions_are_caught() -> None:
    """Over 100 codes x 30 positions x 31 substitutions, at least 99.85% are caught.

    The checksum is 10 bits of a hash, so about 1 in 1024 substitutions in the 28
    data characters slips through (expected catch rate 99.91%, measured 99.90%:
    96 of 93000); the 2 check characters catch every substitution.
    """
    tried = missed = 0
    for text in sample_codes(100):
        chars = text.replace("-", "")
        for pos, original in enumerate(chars):
            for ch in ALPHABET:
                if ch == original:
                    continue
                tried += 1
                try:
                    EnrollmentCode.parse(chars[:pos] + ch + chars[pos + 1 :])
                except BadEnrollmentCodeError:
                    continue
                missed += 1
                assert pos < 28  # never in the check characters
    assert tried == 100 * 30 * 31
    assert missed / tried < 0.0015


def test_lookalike_characters_case_and_separators_are_accepted() -> None:
    """0/1/8 read as O/I/B, lower case, spaces or no separators give the same code."""
    for text in sample_codes(30):
        code = EnrollmentCode.parse(text)
        typed = text.replace("O", "0").replace("I", "1").replace("B", "8").lower()
        assert EnrollmentCode.parse(typed) == code
        assert EnrollmentCode.parse(text.replace("-", " ")) == code
        assert EnrollmentCode.parse(text.replace("-", "")) == code


@pytest.mark.parametrize("text", ["", "ABCDE", "ABCDE-FGHIJ-KLMNO-PQRST-UVWXY-Z2345-6", "9" * 30])
def test_code_of_wrong_length_or_alphabet_is_refused(text: str) -> None:
    """Wrong length or a character outside the alphabet is refused with a clear error."""
    with pytest.raises(BadEnrollmentCodeError):
        EnrollmentCode.parse(text)


def test_code_parts_out_of_range_are_refused() -> None:
    """The constructor refuses a short fingerprint or a secret beyond 60 bits."""
    with pytest.raises(BadEnrollmentCodeError):
        EnrollmentCode(fingerprint=b"short", secret=1)
    with pytest.raises(BadEnrollmentCodeError):
        EnrollmentCode(fingerprint=bytes(10), secret=2**60)


def test_another_hubs_keys_raise_fingerprint_mismatch() -> None:
    """The code names one hub; keys of another hub, or a changed half, are refused."""
    code = f.enrollment_code()
    code.check_hub(HUB)
    other = f.keys("other-hub").public
    for keys in (other, PublicKeys(HUB.sign, other.encrypt), PublicKeys(other.sign, HUB.encrypt)):
        with pytest.raises(FingerprintMismatchError):
            code.check_hub(keys)


def test_enrollment_request_proves_knowledge_of_the_code() -> None:
    """The hub accepts the request with the code's verifier and refuses another verifier."""
    req = EnrollmentRequest.decode(f.enrollment_request().encode())
    req.verify(f.enrollment_code().verifier())
    other = EnrollmentCode.create(HUB, f.ENROLLMENT_SECRET ^ 1)
    with pytest.raises(BadSignatureError):
        req.verify(other.verifier())


def test_enrollment_request_with_swapped_keys_is_refused() -> None:
    """Replacing the node keys in a captured request breaks both signatures."""
    req = f.enrollment_request()
    swapped = EnrollmentRequest(
        req.lookup_id, f.keys("office-c").public, req.code_signature, req.node_signature
    )
    with pytest.raises(BadSignatureError):
        swapped.verify(f.enrollment_code().verifier())


def test_lookup_id_does_not_reveal_the_verifier_input() -> None:
    """Lookup id and verifier differ per code and neither contains the secret's bytes."""
    a = f.enrollment_code()
    b = EnrollmentCode.create(HUB, f.ENROLLMENT_SECRET + 1)
    assert a.lookup_id() != b.lookup_id()
    assert a.verifier() != b.verifier()
    assert a.secret.to_bytes(8, "big").hex() not in a.lookup_id()
