"""The faster checks of issue 11 accept and refuse exactly what the plain ones did.

Each fast path is compared with the code it stands in for, written out here as
it was: same result, or the same error class and message.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codes
from protocol.encoding import field_str, field_str_list, pack, unpack
from protocol.envelope import Envelope, InnerMessage, open_envelope, seal
from protocol.errors import BadSignatureError, InvalidCodeError, MalformedError, ProtocolError
from protocol.keys import verify_signature
from protocol.payloads import (
    CLIENT_FIELD_NAMES,
    CLIENT_FIELDS,
    Consent,
    ErasureReceipt,
    ExpiryNotice,
    Payload,
    Receipt,
    ReferralErase,
    ReferralOffer,
    ReferralReply,
    ReferralStatus,
    ReferralWithdraw,
    StatsCell,
    StatsReport,
    _code,
    decode_payload,
    validate_client_fields,
)
from tests.protocol import factories as f
from tests.protocol.strategies import payloads


class _Lang(enum.StrEnum):
    DE = "de"


def _reference_str_list(
    m: dict[str, Any],
    key: str,
    what: str,
    *,
    allowed: frozenset[str] | None = None,
    pattern: re.Pattern[str] | None = None,
    max_len: int = 50,
) -> tuple[str, ...]:
    """`field_str_list` as it was before its one-pass check."""
    items = m.get(key)
    if not isinstance(items, list):
        raise MalformedError(f"{what}.{key}: expected a list")
    if len(items) > max_len:
        raise MalformedError(f"{what}.{key}: more than {max_len} items")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or len(item) > 200:
            raise MalformedError(f"{what}.{key}: expected a list of short texts")
        if allowed is not None and item not in allowed:
            raise InvalidCodeError(f"{what}.{key}: an item is not a known code")
        if pattern is not None and not pattern.fullmatch(item):
            raise MalformedError(f"{what}.{key}: an item is not in the expected format")
        out.append(item)
    if len(set(out)) != len(out):
        raise MalformedError(f"{what}.{key}: duplicate items")
    return tuple(out)


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except ProtocolError as exc:
        return type(exc).__name__, str(exc)


_ITEMS = (
    st.sampled_from(sorted(CLIENT_FIELD_NAMES))
    | st.sampled_from(["de", "tr", "eng", "DE", "d", "", "x" * 201, "note" * 60])
    | st.sampled_from([_Lang.DE, 1, None, True, b"de", ["de"], {"de": 1}, ("de",)])
    | st.text(max_size=4)
)


@given(items=st.lists(_ITEMS, max_size=8) | _ITEMS, kind=st.sampled_from(["allowed", "pattern"]))
def test_field_str_list_matches_the_item_by_item_loop(items: Any, kind: str) -> None:
    """Codes, other texts, long texts, duplicates, non-texts, unhashables, a StrEnum."""
    rule: dict[str, Any] = (
        {"allowed": CLIENT_FIELD_NAMES} if kind == "allowed" else {"pattern": codes.LANGUAGE}
    )
    m = {"fields": items}
    assert _outcome(field_str_list, m, "fields", "w", **rule) == _outcome(
        _reference_str_list, m, "fields", "w", **rule
    )


def _reference_client_check(key: str, v: Any) -> bool:
    """The client field checks as they were, through `codes.is_code`."""
    lists: dict[str, frozenset[str] | re.Pattern[str]] = {
        "languages": codes.LANGUAGE,
        "topics": codes.TOPIC,
    }
    single: dict[str, frozenset[str] | re.Pattern[str]] = {
        "gender": codes.GENDER,
        "nationality": codes.NATIONALITY,
        "residence_status": codes.RESIDENCE,
        "german_level": codes.GERMAN_LEVEL,
    }
    if key in single:
        return codes.is_code(v, single[key])
    allowed = lists[key]
    return (
        isinstance(v, list)
        and 0 < len(v) <= 20
        and all(codes.is_code(x, allowed) for x in v)
        and len(set(v)) == len(v)
    )


_CODE_VALUES = (
    st.sampled_from(["de", "DE", "XX", "female", "A1", "health", "eu_citizen", "", "deu"])
    | st.sampled_from([_Lang.DE, 1, None, b"de", ("de",)])
    | st.text(max_size=3)
)


@pytest.mark.parametrize(
    "key",
    ["gender", "nationality", "residence_status", "german_level", "languages", "topics"],
)
@given(value=_CODE_VALUES | st.lists(_CODE_VALUES | st.just(["de"]), max_size=4))
def test_client_code_checks_match_is_code(key: str, value: Any) -> None:
    """The code checks built once per field accept exactly what `codes.is_code` accepted."""
    assert CLIENT_FIELDS[key](value) == _reference_client_check(key, value)


def test_client_fields_refuse_with_the_same_messages() -> None:
    with pytest.raises(MalformedError, match=r"^client\.languages: invalid value$"):
        validate_client_fields({"languages": ["de", "de"]})
    with pytest.raises(MalformedError, match=r"^client\.topics: invalid value$"):
        validate_client_fields({"topics": [["health"]]})
    assert validate_client_fields({"gender": "female", "languages": ["de", "tr"]}) == {
        "gender": "female",
        "languages": ["de", "tr"],
    }


@pytest.mark.parametrize("key", [bytes(31), bytes(33), "0" * 32, None])
def test_verify_signature_refuses_a_malformed_key_as_before(key: Any) -> None:
    """A key VerifyKey would not take (wrong size or type) is a failed verification."""
    keys = f.keys("office-a")
    signature = keys.sign(b"message")
    with pytest.raises(BadSignatureError, match=r"^signature does not verify$"):
        verify_signature(key, b"message", signature)


def test_verify_signature_accepts_the_signature_and_nothing_else() -> None:
    keys = f.keys("office-a")
    signature = keys.sign(b"message")
    verify_signature(keys.public.sign, b"message", signature)
    verify_signature(keys.public.sign, bytearray(b"message"), signature)  # type: ignore[arg-type]  # as VerifyKey took it
    with pytest.raises(BadSignatureError, match=r"^signature does not verify$"):
        verify_signature(keys.public.sign, b"messagE", signature)
    with pytest.raises(BadSignatureError, match=r"^signature does not verify$"):
        verify_signature(f.keys("office-b").public.sign, b"message", signature)
    with pytest.raises(BadSignatureError, match=r"^signature has the wrong size$"):
        verify_signature(keys.public.sign, b"message", signature[:63])


# Every class a decoder builds with `payloads.assemble` instead of its `__init__`.
ASSEMBLED = (
    Consent,
    ReferralOffer,
    ReferralReply,
    ReferralStatus,
    ReferralWithdraw,
    ReferralErase,
    ErasureReceipt,
    Receipt,
    StatsCell,
    StatsReport,
    ExpiryNotice,
    InnerMessage,
    Envelope,
)


@pytest.mark.parametrize("cls", ASSEMBLED)
def test_assembled_classes_are_frozen_dataclasses_without_post_init(cls: type) -> None:
    """`assemble` skips `__init__`: right only while there is nothing in it but the fields."""
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]  # set by @dataclass
    assert not hasattr(cls, "__post_init__")
    assert cls.__init__.__code__.co_filename == "<string>"  # the one @dataclass generated


def _holds_every_field(obj: Any) -> bool:
    """`obj` (and every dataclass in it) has exactly its fields in its instance dict."""
    names = {f.name for f in dataclasses.fields(obj)}
    if vars(obj).keys() != names:
        return False
    inner = [getattr(obj, n) for n in names]
    nested = [v for v in inner if dataclasses.is_dataclass(v)]
    nested += [c for v in inner if isinstance(v, tuple) for c in v if dataclasses.is_dataclass(c)]
    return all(_holds_every_field(v) for v in nested)


@given(payload=payloads)
def test_decoded_payloads_equal_the_constructed_ones_field_for_field(payload: Payload) -> None:
    decoded = decode_payload(payload.TYPE, unpack(pack(payload.to_map())))
    assert decoded == payload
    assert _holds_every_field(decoded)


def test_sealed_and_opened_messages_hold_every_field() -> None:
    inner = f.inner()
    bob = f.keys("office-b")
    env = seal(inner, f.keys("office-a"), bob.public, ephemeral_secret=f.seed("e"))
    assert _holds_every_field(env)
    assert env == dataclasses.replace(env)  # the same as one built by __init__
    opened = open_envelope(env, bob, "office-b", f.keys("office-a").public, now=f.NOW)
    assert opened == inner
    assert _holds_every_field(opened)


class _Target(enum.StrEnum):
    JOBCENTER = "jobcenter"


def _reference_code(m: dict[str, Any], key: str, what: str, allowed: frozenset[str]) -> str:
    """`payloads._code` as it was: field_str with max_len 40, then the list."""
    v = field_str(m, key, what, max_len=40)
    if v not in allowed:
        raise InvalidCodeError(f"{what}.{key}: not a known code")
    return v


@given(
    value=st.sampled_from(sorted(codes.REFERRAL_TARGET))
    | st.sampled_from([_Target.JOBCENTER, "x" * 41, "", 1, None, b"mbe", ["mbe"], True])
    | st.text(max_size=5),
    present=st.booleans(),
)
def test_code_matches_field_str_and_the_list(value: Any, present: bool) -> None:
    """A known code takes the short way; anything else gets field_str's or the list's error."""
    m = {"target": value} if present else {}
    assert _outcome(_code, m, "target", "w", codes.REFERRAL_TARGET) == _outcome(
        _reference_code, m, "target", "w", codes.REFERRAL_TARGET
    )
