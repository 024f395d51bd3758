"""The one-pass envelope decoder accepts only what the field-by-field path accepts.

`Envelope.decode` first tries `decode_wire` (protocol/envelope_wire.py); what
that does not accept goes on to the field-by-field checks, which raise the
errors callers see. So the one property that matters: whenever the one-pass
decoder accepts bytes, the field-by-field path accepts them too, with the same
fields. Checked on envelopes as nodes write them, on their bytes mutated, and
on maps of hostile values written by plain msgpack in any order.
"""

from __future__ import annotations

from unittest import mock

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import SUPPORTED_VERSIONS
from protocol.envelope import MAX_CIPHERTEXT, MAX_ENVELOPE, Envelope
from protocol.envelope_wire import decode_wire
from protocol.errors import ProtocolError

KEYS = ("v", "id", "from", "to", "exp", "ct")

ids = st.text("0123456789abcdef", min_size=32, max_size=32)
node_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{1,62}", fullmatch=True)
envelopes = st.builds(
    Envelope,
    msg_id=ids,
    sender=node_ids,
    recipient=node_ids,
    expires=st.integers(0, 2**53),
    ciphertext=st.binary(max_size=300),
    version=st.sampled_from(sorted(SUPPORTED_VERSIONS)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.integers(-2, 4),
    st.just(2**53 + 1),
    st.floats(allow_nan=False),
    st.text(max_size=70),
    st.binary(max_size=70),
    ids,
    node_ids,
    st.sampled_from(sorted(SUPPORTED_VERSIONS)),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)


def field_by_field(data: bytes) -> Envelope | ProtocolError:
    """What `Envelope.decode` makes of `data` without the one-pass decoder."""
    with mock.patch("protocol.envelope.decode_wire", return_value=None):
        try:
            return Envelope.decode(data)
        except ProtocolError as exc:
            return exc


def check_agrees(data: bytes) -> None:
    wire = decode_wire(data, MAX_ENVELOPE, MAX_CIPHERTEXT)
    if wire is None:
        return  # Envelope.decode then is the field-by-field path itself
    slow = field_by_field(data)
    assert isinstance(slow, Envelope), f"one pass accepted what the checks refuse: {slow!r}"
    assert (slow.version, slow.msg_id, slow.sender, slow.recipient, slow.expires) == (
        wire.v,
        wire.id,
        wire.sender,
        wire.to,
        wire.exp,
    )
    assert slow.ciphertext == wire.ct
    assert Envelope.decode(data) == slow


@given(envelopes)
def test_envelopes_as_nodes_write_them_take_the_one_pass(env: Envelope) -> None:
    data = env.encode()
    assert decode_wire(data, MAX_ENVELOPE, MAX_CIPHERTEXT) is not None
    assert Envelope.decode(data) == env
    check_agrees(data)


@settings(max_examples=400)
@given(envelopes, st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_mutated_bytes_are_never_accepted_by_one_path_only(
    env: Envelope, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(env.encode())
    for at, value in flips:
        data[at % len(data)] = value
    check_agrees(bytes(data))


@settings(max_examples=400)
@given(envelopes, st.integers(0, 40), st.binary(max_size=8))
def test_cut_or_extended_bytes_are_never_accepted_by_one_path_only(
    env: Envelope, cut: int, extra: bytes
) -> None:
    data = env.encode()
    check_agrees(data[: max(0, len(data) - cut)])
    check_agrees(data + extra)


@settings(max_examples=600)
@given(
    envelopes,
    st.dictionaries(st.sampled_from((*KEYS, "x", "V")), values, max_size=4),
    st.permutations(range(6)),
)
def test_hostile_values_in_any_order_are_never_accepted_by_one_path_only(
    env: Envelope, replaced: dict[str, object], order: list[int]
) -> None:
    fields = {
        "v": env.version,
        "id": env.msg_id,
        "from": env.sender,
        "to": env.recipient,
        "exp": env.expires,
        "ct": env.ciphertext,
    }
    fields.update(replaced)
    keys = list(fields)
    ordered = {keys[i]: fields[keys[i]] for i in order if i < len(keys)} | fields
    for use_bin_type in (True, False):
        check_agrees(msgpack.packb(ordered, use_bin_type=use_bin_type))


@pytest.mark.parametrize(
    "data",
    [
        # six entries, but one name twice (and so one required name missing)
        b"\x86"
        + b"".join(
            msgpack.packb(x)
            for x in ("v", 1, "v", 1, "id", "0" * 32, "from", "ab", "to", "cd", "exp", 5)
        ),
        # a seventh entry repeating a name after the six
        b"\x87"
        + b"".join(
            msgpack.packb(x, use_bin_type=True)
            for x in (
                "v",
                1,
                "id",
                "0" * 32,
                "from",
                "ab",
                "to",
                "cd",
                "exp",
                5,
                "ct",
                b"",
                "id",
                "1" * 32,
            )
        ),
        # a text that is not UTF-8
        Envelope("0" * 32, "ab", "cd", 5, b"").encode().replace(b"\xa2ab", b"\xa2\xff\xfe"),
        # a ciphertext one byte longer than the biggest bucket allows
        Envelope("0" * 32, "ab", "cd", 5, bytes(MAX_CIPHERTEXT + 1)).encode(),
        # a bytearray, not bytes
        bytearray(Envelope("0" * 32, "ab", "cd", 5, b"").encode()),
    ],
)
def test_edge_cases_agree(data: bytes) -> None:
    check_agrees(bytes(data))
    assert decode_wire(data, MAX_ENVELOPE, MAX_CIPHERTEXT) is None
