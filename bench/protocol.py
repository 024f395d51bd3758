"""Throughput of sealing and opening a typical referral offer (about 2 KiB).

A script, not a test: `python bench/protocol.py --seconds 3`. Each phase runs
for the given time and prints operations per second, so the figure can be
compared across machines and library versions.
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


def rate(seconds: float, op: Callable[[], object]) -> float:
    """Operations per second of `op`, measured for about `seconds`."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        op()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per phase")
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

    print(f"envelope size: {len(wire)} bytes (ciphertext {len(sample.ciphertext)})")
    print(f"seals/s: {rate(args.seconds, do_seal):.0f}")
    print(f"opens/s: {rate(args.seconds, do_open):.0f}")


if __name__ == "__main__":
    main()
