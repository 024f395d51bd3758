"""The exact bytes of the encoder, pinned, so a faster encoder cannot change them.

`pack` is what every signature is computed over: a change of one byte breaks
every signature made before it. These tests pin its output for known inputs
(a mixed object, a sealed 2 KiB referral) and compare it with the original,
plain recursive implementation for arbitrary input; the known-answer vectors
(tests/protocol/test_vectors.py) pin one sealed envelope of every type.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.bindings import crypto_box_seal_open

from protocol.encoding import MAX_DEPTH, Packed, _check_depth, _plain, pack, unpack
from protocol.envelope import InnerMessage, open_envelope, seal
from protocol.errors import MalformedError
from protocol.payloads import Consent, Payload, ReferralOffer
from tests.protocol import factories as f
from tests.protocol.strategies import msgpack_scalars, node_ids, payloads, times


class _Colour(enum.StrEnum):
    RED = "red"


def _reference(obj: Any) -> Any:
    """The canonical form as `pack` first defined it: mappings sorted, sequences lists."""
    if isinstance(obj, Mapping):
        return {k: _reference(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [_reference(v) for v in obj]
    return obj


MIXED: dict[str, Any] = {
    "z": (1, -1, 2**40, -(2**40), 2**64 - 1, True, False, None),
    "a": {"b": [b"\x00\xff", bytearray(b"ab")], "a": 1.5, "Z": "text"},
    "ä": OrderedDict([("y", 1), ("x", (2, 3))]),
    "m": MappingProxyType({"k": _Colour.RED, "j": []}),
    "": {},
}
MIXED_HEX = (
    "85a080a16183a15aa474657874a161cb3ff8000000000000a16292c40200ffc4026162a16d82a16a90a16ba3"
    "726564a17a9801ffcf0000010000000000d3ffffff0000000000cfffffffffffffffffc3c2c0a2c3a482a178"
    "920203a17901"
)


def test_pack_pins_the_bytes_of_a_mixed_object() -> None:
    """Keys sorted by code point, tuples as arrays, any Mapping a map, a StrEnum text."""
    assert pack(MIXED).hex() == MIXED_HEX


def _referral() -> ReferralOffer:
    """The benchmark's 2 KiB referral (bench/protocol.py), with fixed ids."""
    fields = ("given_name", "family_name", "birth_year", "languages", "phone", "topics", "note")
    return ReferralOffer(
        referral_id=f.hex_id("pinned-referral"),
        target_type="jobcenter",
        consent=Consent(
            consent_id=f.hex_id("pinned-consent"),
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


SIGNED_PART_SHA256 = "337469e0d2f1be2609f72af71de985d6dc465f50f86909c1559a45aa2ead8c67"
ENVELOPE_SHA256 = "52dd0199e132dbaa39fcf98970a82d36c3489521233d288d5f2df745b6406154"


def test_seal_pins_the_bytes_of_a_2kib_referral() -> None:
    """Signed bytes and envelope of a fixed referral are exactly the recorded ones, and it opens."""
    inner = f.inner(_referral(), msg_id=f.hex_id("pinned-msg"))
    env = seal(
        inner, f.keys("office-a"), f.keys("office-b").public, ephemeral_secret=f.seed("pinned")
    )
    assert hashlib.sha256(inner.signed_part()).hexdigest() == SIGNED_PART_SHA256
    assert hashlib.sha256(env.encode()).hexdigest() == ENVELOPE_SHA256
    opened = open_envelope(
        env, f.keys("office-b"), "office-b", f.keys("office-a").public, now=f.NOW + 60
    )
    assert opened == inner


@given(payload=payloads, sender=node_ids, created=times, lifetime=st.integers(1, 2**30))
def test_signed_part_and_body_are_pack_of_the_whole_maps(
    payload: Payload, sender: str, created: int, lifetime: int
) -> None:
    """`seal` writes the signed map and the body from shared pieces: the bytes are those of
    `pack` of the whole map, without and with "sig", for every payload type."""
    inner = f.inner(payload, sender=sender, created=created, expires=created + lifetime)
    fields = {
        "v": inner.version,
        "type": inner.type,
        "id": inner.msg_id,
        "from": inner.sender,
        "to": inner.recipient,
        "created": inner.created,
        "exp": inner.expires,
        "payload": payload.to_map(),
    }
    assert inner.signed_part() == b"mbe-sync/inner/v1\x00" + pack(fields)
    bob = f.keys("office-b")
    env = seal(inner, f.keys("office-a"), bob.public, ephemeral_secret=f.seed("body"))
    padded = crypto_box_seal_open(env.ciphertext, bob.public.encrypt, bob.encrypt_secret)
    body = padded[4 : 4 + int.from_bytes(padded[:4], "big")]
    assert body == pack({**fields, "sig": f.keys("office-a").sign(inner.signed_part())})
    assert isinstance(
        open_envelope(env, bob, "office-b", f.keys("office-a").public, now=created), InnerMessage
    )


def _mix_containers(value: Any, data: st.DataObject) -> Any:
    """The same value with some lists as tuples and some dicts as other mappings."""
    if isinstance(value, dict):
        items = {k: _mix_containers(v, data) for k, v in value.items()}
        kind = data.draw(st.sampled_from(["dict", "ordered", "proxy"]))
        if kind == "ordered":
            return OrderedDict(items)
        return MappingProxyType(items) if kind == "proxy" else items
    if isinstance(value, list):
        items_list = [_mix_containers(v, data) for v in value]
        return tuple(items_list) if data.draw(st.booleans()) else items_list
    return value


msgpack_trees = st.recursive(
    msgpack_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(value=msgpack_trees, data=st.data())
def test_pack_equals_the_reference_canonical_form(value: Any, data: st.DataObject) -> None:
    """For any value (lists or tuples, dicts or other mappings): msgpack of the reference."""
    mixed = _mix_containers(value, data)
    assert pack(mixed) == msgpack.packb(_reference(mixed), use_bin_type=True)


def _nested(depth: int, leaf: Any) -> Any:
    """`leaf` inside `depth` lists: [[...[leaf]...]]; the innermost list is at depth - 1."""
    obj = leaf
    for _ in range(depth):
        obj = [obj]
    return obj


@pytest.mark.parametrize(
    ("obj", "refused"),
    [
        (_nested(MAX_DEPTH, []), False),  # an empty list at depth MAX_DEPTH
        (_nested(MAX_DEPTH, 1), False),  # a scalar at depth MAX_DEPTH
        (_nested(MAX_DEPTH + 1, 1), True),  # a scalar at depth MAX_DEPTH + 1
        (_nested(MAX_DEPTH, {}), False),
        (_nested(MAX_DEPTH, {"a": 1}), True),
        (_nested(MAX_DEPTH + 1, []), True),  # an empty list one level deeper
        ({"a": _nested(MAX_DEPTH - 1, "x")}, False),
        ({"a": _nested(MAX_DEPTH, "x")}, True),
    ],
)
def test_unpack_depth_limit_is_exactly_where_it_was(obj: Any, refused: bool) -> None:
    """Depth counts containers and scalars alike: nothing may sit deeper than MAX_DEPTH."""
    data = msgpack.packb(obj, use_bin_type=True)
    if refused:
        with pytest.raises(MalformedError, match="nested"):
            unpack(data)
    else:
        assert unpack(data) == obj


@given(value=msgpack_trees, data=st.data())
def test_a_packed_part_encodes_as_the_value_it_holds(value: Any, data: st.DataObject) -> None:
    """`Packed(pack(x))` anywhere in a map or list gives exactly the bytes of `x` there."""
    key = data.draw(st.text(max_size=5))
    others = data.draw(st.dictionaries(st.text(max_size=5), msgpack_trees, max_size=20))
    plain = {**others, key: [value, {"x": value}]}
    spliced = {**others, key: [Packed(pack(value)), {"x": Packed(pack(value))}]}
    assert pack(spliced) == pack(plain)
    assert pack({**others, key: Packed(pack(value))}) == pack({**others, key: value})
    many = [Packed(pack(value))] * data.draw(st.integers(0, 40))
    assert pack(many) == pack([value] * len(many))


def test_seal_refuses_a_payload_the_recipient_cannot_decode() -> None:
    """A payload map with a non-text key packs, but no recipient would decode it: refused."""
    offer = dataclasses.replace(f.referral_offer(), client={1: "Amina"})  # type: ignore[dict-item]  # the point of the test
    with pytest.raises(MalformedError):
        seal(
            f.inner(offer),
            f.keys("office-a"),
            f.keys("office-b").public,
            ephemeral_secret=f.seed("x"),
        )


# Scalars and containers at the edges of msgpack's forms: every integer width and
# sign, floats that are not numbers, texts, binaries, arrays and maps at the
# lengths where their headers change.
_EDGES: list[Any] = [
    *(n for b in (7, 8, 16, 32, 63, 64) for n in (2**b - 1, 2**b) if n < 2**64),
    *(-(2**b) + d for b in (5, 7, 15, 31, 63) for d in (0, -1) if -(2**b) + d >= -(2**63)),
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    1e-310,
    *("é" * n for n in (0, 31, 32, 255, 256, 65535, 65536)),
    *(b"\x00" * n for n in (0, 255, 256, 65535, 65536)),
    *([None] * n for n in (15, 16, 65535, 65536)),
    *({f"k{i}": i for i in range(n)} for n in (15, 16, 65536)),
    {"\uffff": 1, "\U0001f600": 2, "Z": 3, "a": 4, "ä": 5, "": 6},
]


@pytest.mark.parametrize("value", _EDGES, ids=range(len(_EDGES)))
def test_plain_values_at_the_edges_encode_as_msgpack(value: Any) -> None:
    """The one pass for plain values (msgspec) writes msgpack's bytes at every header change."""
    assert _plain(value)
    assert _plain([value, {"x": (value,)}])
    expected = msgpack.packb(_reference(value), use_bin_type=True)
    assert pack(value) == expected
    assert pack({"x": (value,)}) == msgpack.packb({"x": [_reference(value)]}, use_bin_type=True)


@given(value=msgpack_trees)
def test_plain_values_encode_as_the_reference(value: Any) -> None:
    """Dicts with text keys, lists and the exact leaf types take the one pass, same bytes."""
    assert _plain(value)
    assert pack(value) == msgpack.packb(_reference(value), use_bin_type=True)


@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"a": {1, 2}}, "TypeError"),
        ([_Point(1)], "TypeError"),
        ({"at": dt.datetime(2027, 1, 1)}, "TypeError"),
        (frozenset({"a"}), "TypeError"),
        ({"a": [2**64]}, "OverflowError"),
        ([-(2**63) - 1], "OverflowError"),
        ({"a": "\ud800"}, "UnicodeEncodeError"),
        ({"\udfff": 1}, "UnicodeEncodeError"),
    ],
)
def test_pack_refuses_what_it_refused_with_the_same_message(value: Any, error: str) -> None:
    """Types msgspec would encode (sets, dataclasses, datetimes) never reach it; a value it
    cannot encode either is refused by the general path, with that path's message."""
    with pytest.raises(MalformedError) as exc:
        pack(value)
    assert str(exc.value) == f"cannot encode: {error}"


def test_subclasses_and_other_mappings_take_the_general_path() -> None:
    """A StrEnum, another mapping or a non-text key is not plain: the general path, same bytes."""
    for value in ({"c": _Colour.RED}, MappingProxyType({"a": 1}), OrderedDict(b=1, a=2), {1: 2}):
        assert not _plain(value)
    assert pack({"c": _Colour.RED}) == pack({"c": "red"})
    assert pack(OrderedDict(b=1, a=2)) == msgpack.packb({"a": 2, "b": 1}, use_bin_type=True)


@st.composite
def _deep_trees(draw: st.DrawFn) -> Any:
    """A chain of up to MAX_DEPTH + 3 lists and maps, with empty and scalar siblings."""
    value: Any = draw(st.none() | st.integers(0, 3) | st.just([]) | st.just({}))
    for _ in range(draw(st.integers(0, MAX_DEPTH + 3))):
        siblings: list[Any] = draw(
            st.lists(st.integers(0, 3) | st.just([]) | st.just({}), max_size=2)
        )
        if draw(st.booleans()):
            value = [*siblings, value]
        else:
            value = {"k": value, **{str(i): v for i, v in enumerate(siblings)}}
    return value


@given(value=_deep_trees())
def test_unpack_refuses_exactly_what_the_depth_walk_refuses(value: Any) -> None:
    """`unpack` leaves the depth walk out when there are at most MAX_DEPTH containers; it
    refuses exactly what the walk over every object refuses."""
    data = msgpack.packb(value, use_bin_type=True)
    try:
        _check_depth(value, 0)
    except MalformedError:
        with pytest.raises(MalformedError, match="nested"):
            unpack(data)
    else:
        assert unpack(data) == value
