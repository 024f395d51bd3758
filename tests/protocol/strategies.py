"""Hypothesis strategies: valid payloads of every type, and arbitrary msgpack values."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from hypothesis import strategies as st

from protocol import codes
from protocol.cellkeys import KEY_SPACE
from protocol.payloads import (
    CLIENT_FIELDS,
    MAX_RECEIPT_DOC,
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
)

hex_ids = st.binary(min_size=16, max_size=16).map(bytes.hex)
node_ids = st.from_regex(re.compile(r"[a-z0-9][a-z0-9-]{1,20}"), fullmatch=True)
dates = st.dates(dt.date(1900, 1, 1), dt.date(2999, 12, 31)).map(dt.date.isoformat)
times = st.integers(0, 2**40)


def texts(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(min_size=min_size, max_size=max_size)


def code(values: frozenset[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(values))


def code_lists(values: frozenset[str] | re.Pattern[str]) -> st.SearchStrategy[list[str]]:
    items = code(values) if isinstance(values, frozenset) else st.from_regex(values, fullmatch=True)
    return st.lists(items, min_size=1, max_size=5, unique=True)


nationalities = st.from_regex(codes.NATIONALITY, fullmatch=True)

CLIENT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "given_name": texts(100, 1),
    "family_name": texts(100, 1),
    "birth_year": st.integers(1900, 2100),
    "gender": code(codes.GENDER),
    "nationality": nationalities,
    "residence_status": code(codes.RESIDENCE),
    "languages": code_lists(codes.LANGUAGE),
    "german_level": code(codes.GERMAN_LEVEL),
    "phone": texts(40, 1),
    "email": texts(200, 1),
    "address": texts(300, 1),
    "topics": code_lists(codes.TOPIC),
    "family_members": st.integers(0, 50),
    "note": texts(4000, 1),
}
assert set(CLIENT_VALUES) == set(CLIENT_FIELDS)


@st.composite
def referral_offers(draw: st.DrawFn) -> ReferralOffer:
    names = sorted(CLIENT_FIELDS)
    consented = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    carried = draw(st.lists(st.sampled_from(consented), min_size=1, unique=True))
    consent = Consent(
        consent_id=draw(hex_ids),
        given=draw(dates),
        form=draw(code(codes.CONSENT_FORM)),
        legal_regime=draw(code(codes.LEGAL_REGIME)),
        fields=tuple(consented),
        expires=draw(st.none() | dates),
    )
    client = {k: draw(CLIENT_VALUES[k]) for k in carried}
    return ReferralOffer(
        referral_id=draw(hex_ids),
        target_type=draw(code(codes.REFERRAL_TARGET)),
        consent=consent,
        client=client,
    )


@st.composite
def referral_replies(draw: st.DrawFn) -> ReferralReply:
    decision = draw(code(codes.DECISION))
    reason = draw(code(codes.DECLINE_REASON)) if decision == "declined" else None
    return ReferralReply(draw(hex_ids), decision, reason, draw(st.none() | texts(1000)))


@st.composite
def referral_statuses(draw: st.DrawFn) -> ReferralStatus:
    outcome = draw(code(codes.REFERRAL_OUTCOME))
    min_reason = 1 if outcome == "completed_unsuccessful" else 0
    reason = texts(1000, min_reason)
    return ReferralStatus(
        referral_id=draw(hex_ids),
        outcome=outcome,
        date=draw(dates),
        reason=draw(reason if min_reason else st.none() | reason),
    )


def _dim_value(dim: str) -> st.SearchStrategy[str]:
    values = codes.CROSS_DIMENSIONS[dim]
    return code(values) if isinstance(values, frozenset) else nationalities


@st.composite
def stats_cells(draw: st.DrawFn) -> StatsCell:
    measure = draw(st.sampled_from(sorted(codes.MEASURES)))
    dims: dict[str, str] = {}
    breakdown = codes.MEASURES[measure]
    if breakdown is not None and draw(st.booleans()):
        dims[breakdown[0]] = draw(code(breakdown[1]))
    allowed, max_cross = codes.crossing(measure)
    cross_dims = st.sampled_from(sorted(allowed))
    crossing = draw(st.lists(cross_dims, max_size=max_cross, unique=True))
    for dim in crossing:
        dims[dim] = draw(_dim_value(dim))
    return StatsCell(
        measure=measure,
        dims=dims,
        count=draw(st.integers(0, 10**9)),
        cell_key=draw(st.integers(0, KEY_SPACE - 1)),
    )


stats_reports = st.builds(
    StatsReport,
    period=st.from_regex(codes.PERIOD, fullmatch=True),
    revision=st.integers(1, 1_000_000),
    generated=times,
    cells=st.lists(stats_cells(), max_size=8, unique_by=lambda c: c.ident()).map(tuple),
)

PAYLOADS: dict[str, st.SearchStrategy[Payload]] = {
    ReferralOffer.TYPE: referral_offers(),
    ReferralReply.TYPE: referral_replies(),
    ReferralStatus.TYPE: referral_statuses(),
    ReferralWithdraw.TYPE: st.builds(ReferralWithdraw, hex_ids, code(codes.WITHDRAW_REASON)),
    ReferralErase.TYPE: st.builds(ReferralErase, hex_ids, code(codes.ERASURE_REASON)),
    ErasureReceipt.TYPE: st.builds(ErasureReceipt, hex_ids, st.binary(max_size=MAX_RECEIPT_DOC)),
    Receipt.TYPE: st.builds(Receipt, hex_ids, times),
    StatsReport.TYPE: stats_reports,
    ExpiryNotice.TYPE: st.builds(ExpiryNotice, hex_ids, node_ids, times),
}
payloads: st.SearchStrategy[Payload] = st.one_of(*PAYLOADS.values())

# Arbitrary msgpack-able values: what a hostile peer can put on the wire.
msgpack_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.binary(max_size=40)
)
msgpack_values = st.recursive(
    msgpack_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
msgpack_maps = st.dictionaries(st.text(max_size=12), msgpack_values, max_size=8)
