"""Throughput of sealing and opening a typical referral offer (about 2 KiB).

A script, not a test: `python -m bench.protocol --seconds 8`. Each
phase runs for the given time and prints operations per second next to the
bare crypto ceiling measured in the same run, so the ratio can be compared
across machines, machine loads and library versions:

* seal ceiling: an Ed25519 signature over as many bytes as the signed part,
  plus a sealed box (`crypto_box_seal`) of the padded plaintext, straight
  through the PyNaCl bindings;
* open ceiling: opening that sealed box, plus verifying that signature.

The four phases take turns in batches of a few milliseconds, so the load of
the machine weighs on each alike. Issue 11's goal is a seal ratio of at least
0.6.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Allow `python bench/protocol.py` from the repository root without installing.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nacl.bindings import (
    crypto_box_seal,
    crypto_box_seal_open,
    crypto_sign,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)

from protocol.envelope import Envelope, InnerMessage, open_envelope, seal
from protocol.keys import PrivateKeys
from protocol.payloads import Consent, ReferralOffer

SENDER = "office-a"
RECIPIENT = "office-b"
CREATED = 1_800_000_000


def referral_inner() -> InnerMessage:
    """A referral offer whose packed form is about 2 KiB (a long free-text note)."""
    fields = ("given_name", "family_name", "birth_year", "languages", "phone", "topics", "note")
    offer = ReferralOffer(
        referral_id=os.urandom(16).hex(),
        target_type="jobcenter",
        consent=Consent(
            consent_id=os.urandom(16).hex(),
            given="2027-01-15",
            form="written",
            legal_regime="gdpr",
            fields=fields,
        ),
        client={
            "given_name": "Amina",
            "family_name": "Beispiel",
            "birth_year": 1988,
            "languages": ["ar", "de", "en"],
            "phone": "+49 30 1234567",
            "topics": ["work_recognition", "language_course"],
            "note": "x" * 1800,
        },
    )
    return InnerMessage(
        msg_id=os.urandom(16).hex(),
        sender=SENDER,
        recipient=RECIPIENT,
        created=CREATED,
        expires=CREATED + 14 * 86400,
        payload=offer,
    )


def rates(
    seconds: float, phases: dict[str, Callable[[], object]], batch: int = 10
) -> dict[str, float]:
    """Operations per second of each phase, measured for about `seconds` in all.

    The phases take turns in batches of `batch` operations (a few milliseconds),
    so each sees the same share of whatever else the machine does, and the
    ratio of two phases holds even when the absolute figures move with the load.
    """
    spent = dict.fromkeys(phases, 0.0)
    done = dict.fromkeys(phases, 0)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for name, op in phases.items():
            start = time.perf_counter()
            for _ in range(batch):
                op()
            spent[name] += time.perf_counter() - start
            done[name] += batch
    return {name: done[name] / spent[name] for name in phases}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="time for all phases")
    args = parser.parse_args(argv)

    alice = PrivateKeys.generate()
    bob = PrivateKeys.generate()
    inner = referral_inner()
    sample = seal(inner, alice, bob.public, ephemeral_secret=os.urandom(32))
    wire = sample.encode()

    def do_seal() -> object:
        return seal(inner, alice, bob.public, ephemeral_secret=os.urandom(32)).encode()

    def do_open() -> object:
        return open_envelope(Envelope.decode(wire), bob, RECIPIENT, alice.public, now=CREATED + 60)

    # The ceiling: the same primitives on inputs of the same sizes, nothing else.
    signed = inner.signed_part()
    plaintext = bytes(len(sample.ciphertext) - 48)  # the padded size: one bucket
    sign_sk = crypto_sign_seed_keypair(alice.sign_seed)[1]
    sign_pk = alice.public.sign
    box_pk, box_sk = bob.public.encrypt, bob.encrypt_secret
    signature = crypto_sign(signed, sign_sk)[:64]
    boxed = crypto_box_seal(plaintext, box_pk)

    def bare_seal() -> object:
        return crypto_sign(signed, sign_sk), crypto_box_seal(plaintext, box_pk)

    def bare_open() -> object:
        return crypto_box_seal_open(boxed, box_pk, box_sk), crypto_sign_open(
            signature + signed, sign_pk
        )

    assert len(boxed) == len(sample.ciphertext), "the ceiling seals as many bytes as seal()"
    rate = rates(
        args.seconds,
        {"seal": do_seal, "seal ceiling": bare_seal, "open": do_open, "open ceiling": bare_open},
    )
    print(f"envelope size: {len(wire)} bytes (ciphertext {len(sample.ciphertext)})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for op in ("seal", "open"):
        ratio = rate[op] / rate[f"{op} ceiling"]
        print(
            f"{op}s/s: {rate[op]:.0f}  ceiling (sign/verify + sealed box): "
            f"{rate[f'{op} ceiling']:.0f}/s  ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
