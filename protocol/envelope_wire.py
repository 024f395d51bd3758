"""The outer envelope decoded in one pass, for the envelopes nodes write.

`Envelope.decode` checks untrusted bytes field by field (protocol/encoding.py):
about 20 µs an envelope, and the hub decodes every envelope of every upload,
the largest share of its Python per message (issue 11). An envelope as
`Envelope.encode` writes it, a map of exactly six entries, is decoded here by
msgspec into a typed struct in about 2 µs and then given the same checks of
ranges, lengths and formats as there.

This path only accepts. Whatever it does not accept as it stands (another
first byte, trailing bytes, a type msgspec refuses, a value out of range, a
text not in the expected format) goes on to the field-by-field path, which
accepts or refuses it with its own error; the errors therefore stay exactly
as they were. It accepts nothing that path would refuse: with six entries
whose names are the six required ones no name repeats and no other name
occurs, the scalars need no depth or element budget, and every length, range
and format check of the field-by-field path is repeated below
(tests/protocol/test_envelope_wire.py compares both paths on mutated and
hostile envelopes).
"""

from __future__ import annotations

import msgspec

from protocol import SUPPORTED_VERSIONS
from protocol.encoding import MAX_INT, MAX_TEXT
from protocol.ids import MESSAGE_ID, NODE_ID

# msgpack's header of a map of six entries (a fixmap), which every encoded envelope starts with.
_SIX_ENTRIES = 0x86


class EnvelopeWire(msgspec.Struct, forbid_unknown_fields=True):
    """The six fields of an encoded envelope, typed."""

    v: int
    id: str
    sender: str = msgspec.field(name="from")
    to: str
    exp: int
    ct: bytes


_DECODER = msgspec.msgpack.Decoder(EnvelopeWire)


def decode_wire(data: bytes, max_envelope: int, max_ciphertext: int) -> EnvelopeWire | None:
    """The envelope's fields if `data` passes every check of `Envelope.decode`, else None
    (then that path decides, and raises its error)."""
    if type(data) is not bytes or len(data) > max_envelope or not data or data[0] != _SIX_ENTRIES:
        return None
    try:
        w = _DECODER.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if (
        w.v not in SUPPORTED_VERSIONS  # within 0..2**16, as the field-by-field path checks
        or len(w.ct) > max_ciphertext
        or not 0 <= w.exp <= MAX_INT
        or len(w.id) > MAX_TEXT
        or len(w.sender) > MAX_TEXT
        or len(w.to) > MAX_TEXT
        or not MESSAGE_ID.fullmatch(w.id)
        or not NODE_ID.fullmatch(w.sender)
        or not NODE_ID.fullmatch(w.to)
    ):
        return None
    return w
