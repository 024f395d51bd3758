"""msgpack encoding with limits that hold before any decoding work.

Untrusted bytes go through `unpack` only: it checks the byte cap first, then
lets msgpack refuse oversized strings, binaries, arrays and maps while it
parses, and never enables non-string map keys. The `field_*` helpers read one
field of a decoded map and raise `MalformedError` naming the field, so a
decoder is a list of typed reads and nothing half-valid travels further.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgpack

from protocol.errors import InvalidCodeError, MalformedError, TooLargeError

# Default cap for one decoded object; envelopes pass their own bound.
DEFAULT_MAX_BYTES = 1 << 20
MAX_DEPTH = 8


def pack(obj: Any) -> bytes:
    """Encode deterministically: maps are packed with sorted keys.

    Raises MalformedError for values msgpack cannot carry (a text with a lone
    surrogate, an integer beyond 64 bits, keys of mixed types), so a caller
    catches one hierarchy on the way out as well as on the way in.
    """
    try:
        return msgpack.packb(_sorted(obj), use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise MalformedError(f"cannot encode: {type(exc).__name__}") from None


def _sorted(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [_sorted(v) for v in obj]
    return obj


def unpack(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Decode untrusted bytes; raise TooLargeError or MalformedError, nothing else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError("expected bytes")
    if len(data) > max_bytes:
        raise TooLargeError(f"{len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        obj = msgpack.unpackb(
            bytes(data),
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=min(max_bytes, 100_000),
            max_map_len=min(max_bytes, 10_000),
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise MalformedError(f"not valid msgpack: {type(exc).__name__}") from None
    _check_depth(obj, 0)
    return obj


def _check_depth(obj: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(obj, dict):
        for v in obj.values():
            _check_depth(v, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            _check_depth(v, depth + 1)


def as_map(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedError(f"{what}: expected a map")
    return obj


def exact_keys(m: Mapping[str, Any], required: set[str], optional: set[str], what: str) -> None:
    """Refuse missing and unknown keys, so no field travels unchecked."""
    missing = required - m.keys()
    if missing:
        raise MalformedError(f"{what}: missing field(s) {', '.join(sorted(missing))}")
    unknown = m.keys() - required - optional
    if unknown:
        names = ", ".join(sorted(str(k)[:40] for k in unknown))
        raise MalformedError(f"{what}: unknown field(s) {names}")


def field_str(
    m: Mapping[str, Any],
    key: str,
    what: str,
    *,
    max_len: int = 200,
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


def field_int(m: Mapping[str, Any], key: str, what: str, *, lo: int = 0, hi: int = 2**53) -> int:
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
