"""Derived keys are kept per instance and key checks remembered, with the same results.

`PrivateKeys` derives its key pairs once (issue 11: twice per seal before) and
`PublicKeys` remembers which encryption keys it has checked: neither may change
what a key signs, equals or refuses, nor let a secret into a repr.
"""

from __future__ import annotations

import os
import pickle

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from protocol.errors import MalformedError
from protocol.keys import PrivateKeys, PublicKeys, _small_order
from tests.protocol import factories as f
from tests.protocol.test_low_order_keys import LOW_ORDER


def test_kept_keys_equal_freshly_derived_ones() -> None:
    """signing_key, private_key, public and signatures are those derived from the seeds."""
    k = PrivateKeys.generate()
    for _ in range(2):  # derived on first use, then kept
        assert bytes(k.signing_key) == bytes(SigningKey(k.sign_seed))
        assert bytes(k.private_key) == bytes(PrivateKey(k.encrypt_secret))
        assert k.public.sign == bytes(SigningKey(k.sign_seed).verify_key)
        assert k.public.encrypt == bytes(PrivateKey(k.encrypt_secret).public_key)
        message = os.urandom(100)
        assert k.sign(message) == SigningKey(k.sign_seed).sign(message).signature
    assert k.signing_key is k.signing_key
    assert k.public is k.public


def test_fixed_keys_still_sign_as_recorded() -> None:
    """The deterministic Ed25519 signature of a fixed key over a fixed text is unchanged."""
    sig = f.keys("office-a").sign(b"mbe-sync")
    assert sig == SigningKey(f.seed("office-a/sign")).sign(b"mbe-sync").signature
    f.keys("office-a").public.verify(b"mbe-sync", sig)


def test_equality_and_hash_depend_on_the_seeds_only() -> None:
    """A key with derived parts kept equals (and hashes as) a fresh one; other seeds differ."""
    used, fresh = f.keys("office-a"), f.keys("office-a")
    used.sign(b"x")
    assert used.public is not None
    assert used == fresh
    assert hash(used) == hash(fresh)
    assert used != f.keys("office-b")
    assert PrivateKeys.from_bytes(used.to_bytes()) == used


def test_no_secret_in_repr_str_or_pickle_free_text() -> None:
    """repr and str show the fingerprint, never a seed, also once derived keys are kept."""
    k = f.keys("office-a")
    k.sign(b"x")
    for text in (repr(k), str(k), f"{k}"):
        assert k.sign_seed.hex() not in text
        assert k.encrypt_secret.hex() not in text
        assert k.public.fingerprint() in text
    # Pickling (as before) keeps the seeds; the copy signs alike.
    copy = pickle.loads(pickle.dumps(k))  # noqa: S301 -- our own bytes
    assert copy == k
    assert copy.sign(b"y") == k.sign(b"y")


@pytest.mark.parametrize("enc", LOW_ORDER, ids=lambda b: b.hex()[:8])
def test_a_low_order_key_is_refused_every_time(enc: bytes) -> None:
    """The remembered answer for a low-order key is a refusal, the second time as the first."""
    for _ in range(3):
        with pytest.raises(MalformedError, match="small order"):
            PublicKeys(sign=f.keys("office-a").public.sign, encrypt=enc)


def test_remembered_answers_equal_computed_ones() -> None:
    """The kept answer is the computed one, for low-order and for ordinary keys."""
    keys = LOW_ORDER + [PrivateKeys.generate().public.encrypt for _ in range(20)]
    keys += [os.urandom(32) for _ in range(20)]
    for key in keys:
        computed = _small_order.__wrapped__(key)
        assert _small_order(key) == computed
        assert _small_order(key) == computed
    assert all(_small_order(k) for k in LOW_ORDER)
