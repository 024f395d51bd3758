"""msgpack encoding with limits that hold before any decoding work.

Untrusted bytes go through `unpack` only: it checks the byte cap first, then
lets msgpack refuse oversized strings, binaries, arrays and maps while it
parses, counts the elements of the whole object against a budget as each
array and map is built (so a body of one-byte maps cannot expand into a
million Python objects), and never enables non-string map keys. The `field_*` helpers read one
field of a decoded map and raise `MalformedError` naming the field, so a
decoder is a list of typed reads and nothing half-valid travels further.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import msgpack
import msgspec

from protocol.errors import InvalidCodeError, MalformedError, TooLargeError

# Default cap for one decoded object; envelopes pass their own bound.
DEFAULT_MAX_BYTES = 1 << 20
MAX_DEPTH = 8
# Default element budget of one decoded object (see `unpack`); callers whose
# objects are known pass a tighter one, the few large documents a larger one.
DEFAULT_MAX_ITEMS = 100_000
# Longest single array and largest single map, whatever the budget.
_MAX_ARRAY = 100_000
_MAX_MAP = 10_000


class Packed(bytes):
    """One value already encoded by `pack`, which writes it into a larger object as it is.

    For a part that is encoded more than once (a message's payload in the signed
    bytes and in the body; a directory office that did not change since the
    last version): `pack({"a": Packed(pack(x))})` is exactly `pack({"a": x})`,
    because msgpack encodes a map or array as its header followed by the
    encodings of its items. Build one only from `pack`'s own output.
    """

    __slots__ = ()


def pack(obj: Any) -> bytes:
    """Encode deterministically: maps are packed with sorted keys.

    Raises MalformedError for values msgpack cannot carry (a text with a lone
    surrogate, an integer beyond 64 bits, keys of mixed types), so a caller
    catches one hierarchy on the way out as well as on the way in.
    """
    if _plain(obj):
        try:
            return _PLAIN_ENCODER.encode(obj)
        except (TypeError, ValueError, OverflowError):
            pass  # an integer beyond 64 bits, a lone surrogate: the path below names it
    try:
        if type(obj) is dict and Packed in map(type, obj.values()):
            return b"".join(_pack_parts(obj, []))  # the common place of a Packed, checked first
        try:
            return _packb(_sorted(obj))
        except _HoldsPacked:
            return b"".join(_pack_parts(obj, []))
    except (TypeError, ValueError, OverflowError) as exc:
        raise MalformedError(f"cannot encode: {type(exc).__name__}") from None


# One msgpack Packer per thread: msgpack.packb builds a new one, with a 256 KiB
# buffer, for every call. A Packer that wrote a large object is dropped after it,
# so no thread keeps a large buffer.
_PACKERS = threading.local()
_KEEP_PACKER_BELOW = 256 << 10


def _packb(obj: Any) -> bytes:
    """msgpack of `obj` (canonical already), as msgpack.packb(obj, use_bin_type=True)."""
    packer = getattr(_PACKERS, "packer", None)
    if packer is None:
        packer = _PACKERS.packer = msgpack.Packer(use_bin_type=True)
    data: bytes = packer.pack(obj)
    if len(data) > _KEEP_PACKER_BELOW:
        del _PACKERS.packer
    return data


# Types `_sorted` returns as they are without a further look (exact types only:
# a subclass, say a StrEnum, takes the general path, with the same result).
_LEAVES = frozenset({str, bytes, int, float, bool, type(None)})

# For a value of dicts with text keys, lists, tuples and `_LEAVES` only (exact types:
# `_plain`), msgspec with sorted keys writes exactly the bytes of msgpack of `_sorted`
# (same shortest forms of integers, headers, str/bin types, float64, keys in code
# point order), in one pass in C instead of a sorted copy of every map
# (tests/protocol/test_encoding_pinned.py compares both). It is not given anything
# else: it would encode types `pack` refuses (sets, dataclasses, datetimes).
_PLAIN_ENCODER = msgspec.msgpack.Encoder(order="sorted")


def _plain(obj: Any) -> bool:
    """True for dicts with `str` keys, lists and tuples of such values and `_LEAVES`."""
    cls = type(obj)
    if cls is dict:
        for k, v in obj.items():
            if type(k) is not str or (type(v) not in _LEAVES and not _plain(v)):
                return False
        return True
    if cls is list or cls is tuple:
        for v in obj:  # noqa: SIM110 -- a loop with the leaf test inline: twice as fast as all()
            if type(v) not in _LEAVES and not _plain(v):
                return False
        return True
    return cls in _LEAVES


class _HoldsPacked(Exception):
    """Raised by `_sorted` at the first `Packed`; `pack` then encodes part by part."""


def _sorted(obj: Any) -> Any:
    """The canonical form msgpack encodes: every mapping a dict with sorted keys,
    every list or tuple a list. Exact types are checked first, as they are
    almost all there is (the abstract Mapping check costs far more)."""
    cls = type(obj)
    if cls in _LEAVES:
        return obj
    if cls is dict:
        return {k: v if type(v := obj[k]) in _LEAVES else _sorted(v) for k in sorted(obj)}
    if cls is list or cls is tuple:
        return [v if type(v) in _LEAVES else _sorted(v) for v in obj]
    if cls is Packed:
        raise _HoldsPacked
    if isinstance(obj, Mapping):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [_sorted(v) for v in obj]
    return obj


def _pack_parts(obj: Any, out: list[bytes]) -> list[bytes]:
    """Append the encoding of `obj` to `out` piece by piece, `Packed` values as they are.

    The same bytes as msgpack of `_sorted(obj)`: a map is its header, then each
    key and value in key order; an array its header, then its items. Items
    without a `Packed` inside are encoded together, a run at a time (as a map
    or array of their own, whose header is then left off).
    """
    if type(obj) is Packed:
        out.append(obj)
    elif isinstance(obj, Mapping):
        out.append(_header(len(obj), 0x80, b"\xde", b"\xdf"))
        run: dict[Any, Any] = {}
        for k in sorted(obj):
            v = obj[k]
            cls = type(v)
            if cls in _LEAVES:
                run[k] = v
                continue
            if cls is not Packed:
                try:
                    run[k] = _sorted(v)
                    continue
                except _HoldsPacked:
                    pass
            _flush(run, out)
            out.append(_packb(k))
            _pack_parts(v, out)
            run = {}
        _flush(run, out)
    elif isinstance(obj, list | tuple):
        out.append(_header(len(obj), 0x90, b"\xdc", b"\xdd"))
        if set(map(type, obj)) == {Packed}:  # a list of entries packed before
            out.extend(obj)
            return out
        items: list[Any] = []
        for v in obj:
            if type(v) is not Packed:
                try:
                    items.append(_sorted(v))
                    continue
                except _HoldsPacked:
                    pass
            _flush(items, out)
            _pack_parts(v, out)
            items = []
        _flush(items, out)
    else:
        out.append(_packb(obj))
    return out


def _flush(run: dict[Any, Any] | list[Any], out: list[bytes]) -> None:
    """Append the entries or items of `run` (already in canonical form) without their header."""
    if run:
        n = len(run)
        out.append(_packb(run)[1 if n < 16 else 3 if n < 1 << 16 else 5 :])


def _header(n: int, fix: int, tag16: bytes, tag32: bytes) -> bytes:
    """A msgpack map or array header for `n` items, in its shortest form (as msgpack writes it)."""
    if n < 16:
        return bytes([fix | n])
    if n < 1 << 16:
        return tag16 + n.to_bytes(2, "big")
    if n < 1 << 32:
        return tag32 + n.to_bytes(4, "big")
    raise ValueError("too many items for msgpack")


def unpack(
    data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, max_items: int = DEFAULT_MAX_ITEMS
) -> Any:
    """Decode untrusted bytes; raise TooLargeError or MalformedError, nothing else.

    `max_items` bounds the elements of the whole object: every array and map
    counts one, every array item one, every map key and value one each (so
    `{"a": [1, 2]}` is 1 + 2 + 1 + 2 = 6). The count is kept while msgpack
    builds the containers, and decoding stops at the first container past it,
    so the memory and time an object costs are bounded by the budget, not by
    how many one-byte elements fit into `max_bytes`. Over the budget is
    TooLargeError.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError("expected bytes")
    if len(data) > max_bytes:
        raise TooLargeError(f"{len(data)} bytes exceeds the limit of {max_bytes}")
    budget = _Budget(max_items)
    try:
        obj = msgpack.unpackb(
            bytes(data),
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max(0, min(max_bytes, max_items, _MAX_ARRAY)),
            max_map_len=max(0, min(max_bytes, max_items // 2, _MAX_MAP)),
            max_ext_len=0,
            object_hook=budget.map,
            list_hook=budget.array,
        )
    except _OverBudget:
        raise TooLargeError(f"more than {max_items} elements") from None
    except ValueError as exc:
        # msgpack names the limit an array or map header passed ("... exceeds
        # max_array_len(...)"), a count, never the data.
        if "exceeds max_array_len" in str(exc) or "exceeds max_map_len" in str(exc):
            raise TooLargeError("an array or map has more elements than allowed") from None
        raise MalformedError(f"not valid msgpack: {type(exc).__name__}") from None
    except (TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise MalformedError(f"not valid msgpack: {type(exc).__name__}") from None
    if budget.containers > MAX_DEPTH:
        # Only then can a container sit at depth MAX_DEPTH with something in it: the
        # walk is left out for most messages, whose containers are fewer.
        _check_depth(obj, 0)
    return obj


class _OverBudget(Exception):
    """Raised from inside msgpack's hooks; `unpack` turns it into TooLargeError."""


class _Budget:
    """The element count of one `unpack`, charged as each container is completed.

    msgpack calls the hooks bottom-up, once per map and array (empty ones and
    the root included), so decoding stops at most one container (itself capped
    by max_array_len/max_map_len) past the budget. Scalars are charged through
    the container holding them. `containers` counts the maps and arrays: an
    object of at most MAX_DEPTH of them cannot nest deeper than MAX_DEPTH.
    """

    __slots__ = ("containers", "left")

    def __init__(self, max_items: int) -> None:
        self.left = max_items
        self.containers = 0

    def map(self, m: dict[str, Any]) -> dict[str, Any]:
        self.left -= 1 + 2 * len(m)
        self.containers += 1
        if self.left < 0:
            raise _OverBudget
        return m

    def array(self, a: list[Any]) -> list[Any]:
        self.left -= 1 + len(a)
        self.containers += 1
        if self.left < 0:
            raise _OverBudget
        return a


def _check_depth(obj: Any, depth: int) -> None:
    """Refuse anything, container or scalar, deeper than MAX_DEPTH (the root is at 0).

    `obj` comes from `unpack`, so its containers are exactly dicts and lists.
    """
    cls = type(obj)
    if cls is dict:
        items: Any = obj.values()
    elif cls is list:
        items = obj
    else:
        return
    if not items:
        return
    if depth >= MAX_DEPTH:  # its items would sit at depth + 1
        raise MalformedError(f"nested deeper than {MAX_DEPTH} levels")
    for v in items:
        if type(v) is dict or type(v) is list:
            _check_depth(v, depth + 1)


def as_map(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedError(f"{what}: expected a map")
    return obj


def exact_keys(
    m: Mapping[str, Any], required: AbstractSet[str], optional: AbstractSet[str], what: str
) -> None:
    """Refuse missing and unknown keys, so no field travels unchecked."""
    keys = m.keys()
    if keys == required:  # the common case: nothing missing, nothing unknown
        return
    missing = required - keys
    if missing:
        raise MalformedError(f"{what}: missing field(s) {', '.join(sorted(missing))}")
    unknown = keys - required - optional
    if unknown:
        names = ", ".join(sorted(str(k)[:40] for k in unknown))
        raise MalformedError(f"{what}: unknown field(s) {names}")


# The longest text `field_str` and `field_str_list` accept unless told otherwise,
# and the largest integer `field_int` accepts (the largest a JSON number holds exactly).
MAX_TEXT = 200
MAX_INT = 2**53


def field_str(
    m: Mapping[str, Any],
    key: str,
    what: str,
    *,
    max_len: int = MAX_TEXT,
    pattern: re.Pattern[str] | None = None,
) -> str:
    v = m.get(key)
    if not isinstance(v, str):
        raise MalformedError(f"{what}.{key}: expected text")
    if len(v) > max_len:
        raise MalformedError(f"{what}.{key}: longer than {max_len} characters")
    if pattern is not None and not pattern.fullmatch(v):
        raise MalformedError(f"{what}.{key}: not in the expected format")
    return v


def field_int(m: Mapping[str, Any], key: str, what: str, *, lo: int = 0, hi: int = MAX_INT) -> int:
    v = m.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise MalformedError(f"{what}.{key}: expected an integer")
    if not lo <= v <= hi:
        raise MalformedError(f"{what}.{key}: out of range {lo}..{hi}")
    return v


def field_bytes(m: Mapping[str, Any], key: str, what: str, *, size: int | None = None) -> bytes:
    v = m.get(key)
    if not isinstance(v, bytes):
        raise MalformedError(f"{what}.{key}: expected bytes")
    if size is not None and len(v) != size:
        raise MalformedError(f"{what}.{key}: expected {size} bytes")
    return v


def field_list(m: Mapping[str, Any], key: str, what: str, *, max_len: int = 1000) -> list[Any]:
    v = m.get(key)
    if not isinstance(v, list):
        raise MalformedError(f"{what}.{key}: expected a list")
    if len(v) > max_len:
        raise MalformedError(f"{what}.{key}: more than {max_len} items")
    return v


_STR = frozenset({str})


def field_str_list(
    m: Mapping[str, Any],
    key: str,
    what: str,
    *,
    allowed: frozenset[str] | None = None,
    pattern: re.Pattern[str] | None = None,
    max_len: int = 50,
) -> tuple[str, ...]:
    items = field_list(m, key, what, max_len=max_len)
    if (
        set(map(type, items)) <= _STR
        and (allowed is None or allowed.issuperset(items))
        and (pattern is None or all(map(pattern.fullmatch, items)))
        and max(map(len, items), default=0) <= MAX_TEXT
        and len(set(items)) == len(items)
    ):
        # Texts only, each allowed, none long, none twice: what the loop below
        # accepts, checked in C. Anything else goes through it for its error.
        return tuple(items)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or len(item) > MAX_TEXT:
            raise MalformedError(f"{what}.{key}: expected a list of short texts")
        if allowed is not None and item not in allowed:
            raise InvalidCodeError(f"{what}.{key}: an item is not a known code")
        if pattern is not None and not pattern.fullmatch(item):
            raise MalformedError(f"{what}.{key}: an item is not in the expected format")
        out.append(item)
    if len(set(out)) != len(out):
        raise MalformedError(f"{what}.{key}: duplicate items")
    return tuple(out)
