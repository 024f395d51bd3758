"""The identity of a report cell: a measure and its sorted (dimension, value) pairs.

The same key is used by `StatsCell.key()`, by the aggregation index and by the
storage the hub keeps (as text, see `dims_text`), so a cell never changes
identity on its way from a node's report to a published table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hub.stats.errors import TableSpecError
from protocol import codes

Dims = tuple[tuple[str, str], ...]
CellIdent = tuple[str, Dims]

# Dimensions whose values do not partition the cases: a case has several topics,
# so the cells by topic may add up to more than their margin.
NON_ADDITIVE_DIMS = frozenset({"topic"})


def cell_ident(measure: str, dims: Mapping[str, str]) -> CellIdent:
    return measure, tuple(sorted(dims.items()))


def dims_text(dims: Dims) -> str:
    """Canonical text of a dimension tuple: `age_band=27_39;gender=female`, `` for a total."""
    return ";".join(f"{d}={v}" for d, v in dims)


def parse_dims_text(text: str) -> Dims:
    """Inverse of `dims_text`; refuses anything that is not canonical."""
    if text == "":
        return ()
    pairs: list[tuple[str, str]] = []
    for part in text.split(";"):
        dim, sep, value = part.partition("=")
        if not sep or not dim or not value:
            raise TableSpecError("cell dimensions must look like dim=value;dim=value")
        pairs.append((dim, value))
    dims = tuple(pairs)
    if tuple(sorted(dims)) != dims or len({d for d, _ in dims}) != len(dims):
        raise TableSpecError("cell dimensions must be sorted by name and not repeat")
    return dims


def dimension_allowed(measure: str, dim: str) -> bool:
    """Whether `dim` may break down `measure` (its own breakdown or one of the
    crossing dimensions nodes count it by, codes.crossing)."""
    breakdown = codes.MEASURES.get(measure)
    return dim in codes.crossing(measure)[0] or (breakdown is not None and dim == breakdown[0])


def pair_allowed(measure: str, first: str, second: str) -> bool:
    """Whether nodes count `measure` by `first` and `second` together: both allowed,
    and two crossing dimensions only for a measure crossed by two at once. (A table
    of a pair no node sends would show zeros that are not true.)"""
    if not (dimension_allowed(measure, first) and dimension_allowed(measure, second)):
        return False
    breakdown = codes.MEASURES.get(measure)
    own = breakdown[0] if breakdown is not None else None
    return own in (first, second) or codes.crossing(measure)[1] >= 2


def closed_codes(measure: str, dim: str) -> tuple[str, ...] | None:
    """The full code list of `dim` in a stable order, or None for an open list (nationality)."""
    breakdown = codes.MEASURES.get(measure)
    allowed: frozenset[str] | re.Pattern[str] | None
    if breakdown is not None and dim == breakdown[0]:
        allowed = breakdown[1]
    else:
        allowed = codes.CROSS_DIMENSIONS.get(dim)
    if isinstance(allowed, frozenset):
        return tuple(sorted(allowed))
    return None
