"""Known-answer vectors: build them from fixed inputs, compare with or write tests/vectors/.

    python -m tests.protocol.vectors           # exit 1 if a committed file differs
    python -m tests.protocol.vectors --write   # rewrite the files (review the diff!)

Every byte string is hex. Keys come from the seeds in keys.json; every random
input (ephemeral secrets, nonces, enrollment secrets) is fixed here, so any
other implementation can reproduce each file exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from protocol.cellkeys import RecordKeys
from protocol.encoding import pack
from protocol.envelope import seal
from protocol.requests import canonical, sign_request
from tests.protocol import factories as f

VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors"
PARTIES = ("hub", "office-a", "office-b", "office-c", "office-a-new", "office-b-old")


def _keys_vectors() -> dict[str, Any]:
    parties = {}
    for name in PARTIES:
        k = f.keys(name)
        parties[name] = {
            "sign_seed": k.sign_seed.hex(),
            "encrypt_secret": k.encrypt_secret.hex(),
            "sign_public": k.public.sign.hex(),
            "encrypt_public": k.public.encrypt.hex(),
            "fingerprint_bytes": k.public.fingerprint_bytes().hex(),
            "fingerprint": k.public.fingerprint(),
        }
    return {
        "about": "Fixed key pairs; node id = party name. Fingerprint: BLAKE2b-160 "
        "(person mbe-sync-fp-v1) of sign_public||encrypt_public, text = base32 of 10 bytes.",
        "parties": parties,
    }


def _routing(type_: str) -> tuple[str, str]:
    if type_ == "stats.report":
        return "office-a", "hub"
    if type_ == "relay.expired":
        return "hub", "office-a"
    if type_ in ("referral.reply", "referral.status", "receipt"):
        return "office-b", "office-a"
    return "office-a", "office-b"


def _envelope_vectors() -> dict[str, Any]:
    cases = []
    for i, (type_, payload) in enumerate(sorted(f.sample_payloads().items())):
        sender, recipient = _routing(type_)
        msg = f.inner(payload, sender=sender, recipient=recipient, msg_id=f.hex_id(f"msg-{i}"))
        ephemeral = f.seed(f"ephemeral/{i}")
        sender_keys = f.keys(sender)
        env = seal(msg, sender_keys, f.keys(recipient).public, ephemeral_secret=ephemeral)
        signed = msg.signed_part()
        cases.append(
            {
                "type": type_,
                "sender": sender,
                "recipient": recipient,
                "ephemeral_secret": ephemeral.hex(),
                "open_at": f.NOW + 60,
                "inner": {
                    "v": msg.version,
                    "id": msg.msg_id,
                    "created": msg.created,
                    "exp": msg.expires,
                    "payload": payload.to_map(),
                },
                "signed_part": signed.hex(),
                "signature": sender_keys.sign(signed).hex(),
                "envelope": env.encode().hex(),
            }
        )
    return {
        "about": "seal() of one message per type. signed_part = 'mbe-sync/inner/v1\\0' + "
        "msgpack(sorted map); ciphertext = crypto_box_seal with the given ephemeral secret.",
        "cases": cases,
    }


def _document_vectors() -> dict[str, Any]:
    hub = f.keys("hub")
    cert = f.certificate()
    directory = f.directory()
    rotation = f.rotation()
    return {
        "about": "Signed documents: msgpack {doc, body (packed bytes), sig}; sig is Ed25519 "
        "over 'mbe-sync/doc/v1\\0' + kind + '\\0' + body.",
        "node_cert": {
            "signer": "hub",
            "verify_at": f.NOW,
            "body": pack(cert.body()).hex(),
            "signed": cert.sign(hub).hex(),
        },
        "directory": {
            "signer": "hub",
            "verify_at": f.NOW,
            "version": directory.version,
            "body": pack(directory.body()).hex(),
            "signed": directory.sign(hub).hex(),
        },
        "key_rotation": {
            "signer": "office-a",
            "new_keys": "office-a-new",
            "signed": rotation.sign(f.keys("office-a")).hex(),
        },
    }


def _request_vectors() -> dict[str, Any]:
    cases = []
    inputs = [
        ("POST", "/v1/messages", pack({"example": 1})),
        ("GET", "/v1/messages?after=0&limit=50", b""),
    ]
    for i, (method, path, body) in enumerate(inputs):
        nonce = f.hex_id(f"nonce-{i}")
        ts = f.NOW + i
        headers = sign_request(
            method,
            path,
            body,
            node_id="office-a",
            keys=f.keys("office-a"),
            timestamp=ts,
            nonce=nonce,
        )
        cases.append(
            {
                "method": method,
                "path": path,
                "body": body.hex(),
                "node_id": "office-a",
                "signer": "office-a",
                "timestamp": ts,
                "nonce": nonce,
                "canonical": canonical(method, path, body, "office-a", ts, nonce).decode(),
                "headers": headers,
            }
        )
    return {
        "about": "Request signing: Ed25519 over the canonical string (lines: domain, METHOD, "
        "path with query, sha256(body) hex, timestamp, nonce, node id).",
        "cases": cases,
    }


def _enrollment_vectors() -> dict[str, Any]:
    code = f.enrollment_code()
    request = f.enrollment_request()
    return {
        "about": "Enrollment code for the hub's keys and a fixed 60-bit secret, and the "
        "request office-a sends with it.",
        "hub": "hub",
        "node": "office-a",
        "secret": code.secret,
        "fingerprint": code.fingerprint.hex(),
        "code": code.text(),
        "verifier": code.verifier().hex(),
        "lookup_id": code.lookup_id(),
        "statement": request.statement().hex(),
        "request": request.encode().hex(),
    }


def _cellkey_vectors() -> dict[str, Any]:
    secret = bytes(range(32))
    cases = []
    for period, cell, record in [
        ("2026-11", "cases_new:", "case-1"),
        ("2026-11", "cases_new:gender=female", "case-1"),
        ("2026-Q4", "cases_new:gender=female", "case-1"),
        ("2026-11", "contacts:channel=phone;topic=debt", "contact-7"),
    ]:
        key = RecordKeys(secret, period).key(cell, record)
        cases.append({"period": period, "cell": cell, "record": record, "key": key})
    return {
        "about": "Record keys of the cell key method: BLAKE2b-64 keyed with the office "
        "secret (person mbe-cellkey-v2) over period, 0x1f, cell name, 0x1f, record id; "
        "the key is the digest as a big-endian integer mod 2**32.",
        "secret": secret.hex(),
        "cases": cases,
    }


def _stats_vectors() -> dict[str, Any]:
    """A dataset version 3 report sealed to the hub (envelope.json keeps the version 2 one,
    which the hub still takes)."""
    report = f.stats_report_v3()
    sender, recipient = _routing(report.TYPE)
    msg = f.inner(report, sender=sender, recipient=recipient, msg_id=f.hex_id("msg-stats-v3"))
    ephemeral = f.seed("ephemeral/stats-v3")
    sender_keys = f.keys(sender)
    env = seal(msg, sender_keys, f.keys(recipient).public, ephemeral_secret=ephemeral)
    signed = msg.signed_part()
    return {
        "about": "seal() of a stats.report of dataset mbe-core version 3 (the measures of "
        "unmet need), built like the cases of envelope.json.",
        "cases": [
            {
                "type": report.TYPE,
                "sender": sender,
                "recipient": recipient,
                "ephemeral_secret": ephemeral.hex(),
                "open_at": f.NOW + 60,
                "inner": {
                    "v": msg.version,
                    "id": msg.msg_id,
                    "created": msg.created,
                    "exp": msg.expires,
                    "payload": report.to_map(),
                },
                "signed_part": signed.hex(),
                "signature": sender_keys.sign(signed).hex(),
                "envelope": env.encode().hex(),
            }
        ],
    }


def build() -> dict[str, dict[str, Any]]:
    """Every vector file's content, by file name."""
    return {
        "keys.json": _keys_vectors(),
        "envelope.json": _envelope_vectors(),
        "documents.json": _document_vectors(),
        "requests.json": _request_vectors(),
        "enrollment.json": _enrollment_vectors(),
        "cellkeys.json": _cellkey_vectors(),
        "stats.json": _stats_vectors(),
    }


def render(content: dict[str, Any]) -> str:
    """The exact text of a vector file (stable key order, one trailing newline)."""
    return json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load(name: str) -> Any:
    """A committed vector file, parsed."""
    return json.loads((VECTOR_DIR / name).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="check or rewrite tests/vectors/")
    parser.add_argument("--write", action="store_true", help="rewrite the vector files")
    args = parser.parse_args(argv)
    differing = []
    for name, content in build().items():
        path = VECTOR_DIR / name
        text = render(content)
        if args.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            differing.append(name)
    for name in differing:
        print(f"differs: {name}", file=sys.stderr)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
