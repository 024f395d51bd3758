"""Typed payloads of sealed messages, validated on decode against the code lists.

Each payload is a frozen dataclass with `to_map()` and a decoder registered by
its message type. Decoders refuse unknown and missing fields, so a payload
that decodes is complete and every value in it is in range.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from protocol import codes
from protocol.cellkeys import KEY_SPACE
from protocol.encoding import (
    as_map,
    exact_keys,
    field_bytes,
    field_int,
    field_list,
    field_str,
    field_str_list,
)
from protocol.errors import (
    InvalidCodeError,
    MalformedError,
    UnknownTypeError,
    UnsupportedVersionError,
)
from protocol.ids import MESSAGE_ID, NODE_ID

DATE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
MAX_CELLS = 20_000
MAX_RECEIPT_DOC = 4096  # a signed deletion receipt (protocol/erasure.py)


_T = TypeVar("_T")
_new = object.__new__


def assemble(cls: type[_T], /, **fields: Any) -> _T:
    """`cls(**fields)` for a frozen dataclass given every one of its fields, by a decoder
    that has checked them: the instance dict filled in one step, where the generated
    `__init__` calls `object.__setattr__` once per field to get past the frozen
    `__setattr__` (twice the time). Only for classes without `__post_init__` or
    defaults to fill in (tests/protocol/test_fast_paths.py checks every user)."""
    obj = _new(cls)
    obj.__dict__.update(fields)
    return obj


def _code(m: Mapping[str, Any], key: str, what: str, allowed: frozenset[str]) -> str:
    v = m.get(key)
    if type(v) is str and v in allowed and len(v) <= 40:
        return v  # a known code: what the checks below accept, without calling field_str
    v = field_str(m, key, what, max_len=40)
    if v not in allowed:
        raise InvalidCodeError(f"{what}.{key}: not a known code")
    return v


def _opt_text(m: Mapping[str, Any], key: str, what: str, max_len: int) -> str | None:
    return field_str(m, key, what, max_len=max_len) if key in m else None


# ---------------------------------------------------------------- client fields
# The fields a referral can carry about a client. A consent names a subset of
# these keys; the node sends only those. Each entry validates one value.


def _text(max_len: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and 0 < len(v) <= max_len


def _code_in(allowed: frozenset[str] | re.Pattern[str]) -> Callable[[Any], bool]:
    """`codes.is_code(v, allowed)`, with the kind of `allowed` looked at once, not per value."""
    if isinstance(allowed, frozenset):
        return lambda v: isinstance(v, str) and v in allowed
    fullmatch = allowed.fullmatch
    return lambda v: isinstance(v, str) and fullmatch(v) is not None


def _codes_list(allowed: frozenset[str] | re.Pattern[str]) -> Callable[[Any], bool]:
    is_code = _code_in(allowed)
    return lambda v: (
        isinstance(v, list)
        and 0 < len(v) <= 20
        # Items are checked before set(): unhashable items would raise TypeError.
        and all(map(is_code, v))
        and len(set(v)) == len(v)
    )


def _int_range(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


CLIENT_FIELDS: dict[str, Callable[[Any], bool]] = {
    "given_name": _text(100),
    "family_name": _text(100),
    "birth_year": _int_range(1900, 2100),
    "gender": _code_in(codes.GENDER),
    "nationality": _code_in(codes.NATIONALITY),
    "residence_status": _code_in(codes.RESIDENCE),
    "languages": _codes_list(codes.LANGUAGE),
    "german_level": _code_in(codes.GERMAN_LEVEL),
    "phone": _text(40),
    "email": _text(200),
    "address": _text(300),
    "topics": _codes_list(codes.TOPIC),
    "family_members": _int_range(0, 50),
    "note": _text(4000),
}
CLIENT_FIELD_NAMES = frozenset(CLIENT_FIELDS)


def validate_client_fields(obj: Any, what: str = "client") -> dict[str, Any]:
    """Check a map of client fields; error texts name the field, never its value."""
    m = as_map(obj, what)
    if not m:
        raise MalformedError(f"{what}: at least one field is required")
    for key, value in m.items():
        check = CLIENT_FIELDS.get(key)
        if check is None:
            raise MalformedError(f"{what}: unknown field {str(key)[:40]}")
        if not check(value):
            raise MalformedError(f"{what}.{key}: invalid value")
    return dict(m)


# ---------------------------------------------------------------- payload types
# The fields of each payload map (`exact_keys`), built once.
_NONE: frozenset[str] = frozenset()
_CONSENT_KEYS = frozenset({"id", "given", "form", "regime", "fields"})
_CONSENT_OPTIONAL = frozenset({"expires"})
_OFFER_KEYS = frozenset({"referral", "target", "consent", "client"})
_REPLY_KEYS = frozenset({"referral", "decision"})
_REPLY_OPTIONAL = frozenset({"reason", "note"})
_STATUS_KEYS = frozenset({"referral", "outcome", "date"})
_STATUS_OPTIONAL = frozenset({"reason"})
_REFERRAL_REASON_KEYS = frozenset({"referral", "reason"})  # withdraw, erase
_ERASURE_RECEIPT_KEYS = frozenset({"referral", "doc"})
_RECEIPT_KEYS = frozenset({"of", "received"})
_REPORT_KEYS = frozenset({"dataset", "version", "period", "revision", "generated", "cells"})
_EXPIRY_KEYS = frozenset({"of", "to", "expired"})


@dataclass(frozen=True)
class Consent:
    """The consent a referral relies on, as the sending office documented it."""

    consent_id: str
    given: str
    form: str
    legal_regime: str
    fields: tuple[str, ...]
    expires: str | None = None

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "id": self.consent_id,
            "given": self.given,
            "form": self.form,
            "regime": self.legal_regime,
            "fields": list(self.fields),
        }
        if self.expires is not None:
            m["expires"] = self.expires
        return m

    @classmethod
    def from_map(cls, obj: Any) -> Consent:
        w = "consent"
        m = as_map(obj, w)
        exact_keys(m, _CONSENT_KEYS, _CONSENT_OPTIONAL, w)
        return assemble(
            cls,
            consent_id=field_str(m, "id", w, pattern=MESSAGE_ID),
            given=field_str(m, "given", w, pattern=DATE),
            form=_code(m, "form", w, codes.CONSENT_FORM),
            legal_regime=_code(m, "regime", w, codes.LEGAL_REGIME),
            fields=field_str_list(m, "fields", w, allowed=CLIENT_FIELD_NAMES),
            expires=field_str(m, "expires", w, pattern=DATE) if "expires" in m else None,
        )


@dataclass(frozen=True)
class ReferralOffer:
    """A client handed over to another office, with the consented fields only."""

    TYPE = "referral.offer"
    referral_id: str
    target_type: str
    consent: Consent
    client: Mapping[str, Any] = field(default_factory=dict)

    def to_map(self) -> dict[str, Any]:
        return {
            "referral": self.referral_id,
            "target": self.target_type,
            "consent": self.consent.to_map(),
            "client": dict(self.client),
        }

    @classmethod
    def from_map(cls, obj: Any) -> ReferralOffer:
        w = "referral.offer"
        m = as_map(obj, w)
        exact_keys(m, _OFFER_KEYS, _NONE, w)
        consent = Consent.from_map(m["consent"])
        client = validate_client_fields(m["client"])
        if not client.keys() <= set(consent.fields):
            raise MalformedError(f"{w}: carries a field the consent does not cover")
        return assemble(
            cls,
            referral_id=field_str(m, "referral", w, pattern=MESSAGE_ID),
            target_type=_code(m, "target", w, codes.REFERRAL_TARGET),
            consent=consent,
            client=client,
        )


@dataclass(frozen=True)
class ReferralReply:
    """The receiving office accepts or declines (with a reason)."""

    TYPE = "referral.reply"
    referral_id: str
    decision: str
    reason: str | None = None
    note: str | None = None

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {"referral": self.referral_id, "decision": self.decision}
        if self.reason is not None:
            m["reason"] = self.reason
        if self.note is not None:
            m["note"] = self.note
        return m

    @classmethod
    def from_map(cls, obj: Any) -> ReferralReply:
        w = "referral.reply"
        m = as_map(obj, w)
        exact_keys(m, _REPLY_KEYS, _REPLY_OPTIONAL, w)
        decision = _code(m, "decision", w, codes.DECISION)
        reason = _code(m, "reason", w, codes.DECLINE_REASON) if "reason" in m else None
        if decision == "declined" and reason is None:
            raise MalformedError(f"{w}: a decline needs a reason")
        if decision == "accepted" and reason is not None:
            raise MalformedError(f"{w}: an acceptance carries no decline reason")
        return assemble(
            cls,
            referral_id=field_str(m, "referral", w, pattern=MESSAGE_ID),
            decision=decision,
            reason=reason,
            note=_opt_text(m, "note", w, 1000),
        )


@dataclass(frozen=True)
class ReferralStatus:
    """Progress after acceptance, or the confirmation of a deletion."""

    TYPE = "referral.status"
    referral_id: str
    outcome: str
    date: str
    reason: str | None = None

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "referral": self.referral_id,
            "outcome": self.outcome,
            "date": self.date,
        }
        if self.reason is not None:
            m["reason"] = self.reason
        return m

    @classmethod
    def from_map(cls, obj: Any) -> ReferralStatus:
        w = "referral.status"
        m = as_map(obj, w)
        exact_keys(m, _STATUS_KEYS, _STATUS_OPTIONAL, w)
        outcome = _code(m, "outcome", w, codes.REFERRAL_OUTCOME)
        reason = _opt_text(m, "reason", w, 1000)
        if outcome == "completed_unsuccessful" and not reason:
            raise MalformedError(f"{w}: an unsuccessful completion needs a reason")
        return assemble(
            cls,
            referral_id=field_str(m, "referral", w, pattern=MESSAGE_ID),
            outcome=outcome,
            date=field_str(m, "date", w, pattern=DATE),
            reason=reason,
        )


@dataclass(frozen=True)
class ReferralWithdraw:
    """The sender withdraws: the recipient must delete what it holds and confirm."""

    TYPE = "referral.withdraw"
    referral_id: str
    reason: str

    def to_map(self) -> dict[str, Any]:
        return {"referral": self.referral_id, "reason": self.reason}

    @classmethod
    def from_map(cls, obj: Any) -> ReferralWithdraw:
        w = "referral.withdraw"
        m = as_map(obj, w)
        exact_keys(m, _REFERRAL_REASON_KEYS, _NONE, w)
        return assemble(
            cls,
            referral_id=field_str(m, "referral", w, pattern=MESSAGE_ID),
            reason=_code(m, "reason", w, codes.WITHDRAW_REASON),
        )


@dataclass(frozen=True)
class ReferralErase:
    """The sender erased the client's case: the recipient erases what it holds
    only because of this referral and answers with an `ErasureReceipt`
    (docs/client-rights.md)."""

    TYPE = "referral.erase"
    referral_id: str
    reason: str

    def to_map(self) -> dict[str, Any]:
        return {"referral": self.referral_id, "reason": self.reason}

    @classmethod
    def from_map(cls, obj: Any) -> ReferralErase:
        w = "referral.erase"
        m = as_map(obj, w)
        exact_keys(m, _REFERRAL_REASON_KEYS, _NONE, w)
        return assemble(
            cls,
            referral_id=field_str(m, "referral", w, pattern=MESSAGE_ID),
            reason=_code(m, "reason", w, codes.ERASURE_REASON),
        )


@dataclass(frozen=True)
class ErasureReceipt:
    """The recipient's answer to a `referral.erase`: its signed deletion receipt
    (protocol/erasure.py `DeletionReceipt`), checked by the sender with the
    recipient's key from the directory."""

    TYPE = "erasure.receipt"
    referral_id: str
    document: bytes

    def to_map(self) -> dict[str, Any]:
        return {"referral": self.referral_id, "doc": self.document}

    @classmethod
    def from_map(cls, obj: Any) -> ErasureReceipt:
        w = "erasure.receipt"
        m = as_map(obj, w)
        exact_keys(m, _ERASURE_RECEIPT_KEYS, _NONE, w)
        doc = field_bytes(m, "doc", w)
        if len(doc) > MAX_RECEIPT_DOC:
            raise MalformedError(f"{w}.doc: too large")
        return assemble(
            cls, referral_id=field_str(m, "referral", w, pattern=MESSAGE_ID), document=doc
        )


@dataclass(frozen=True)
class Receipt:
    """End-to-end delivery receipt for one message."""

    TYPE = "receipt"
    of_msg_id: str
    received: int

    def to_map(self) -> dict[str, Any]:
        return {"of": self.of_msg_id, "received": self.received}

    @classmethod
    def from_map(cls, obj: Any) -> Receipt:
        w = "receipt"
        m = as_map(obj, w)
        exact_keys(m, _RECEIPT_KEYS, _NONE, w)
        return assemble(
            cls,
            of_msg_id=field_str(m, "of", w, pattern=MESSAGE_ID),
            received=field_int(m, "received", w),
        )


@dataclass(frozen=True)
class StatsCell:
    """One count: a measure, its breakdown and crossing dimensions, the number, and
    the cell key: the sum of the counted records' keys modulo KEY_SPACE
    (protocol.cellkeys), from which the hub derives the cell's perturbation."""

    measure: str
    dims: Mapping[str, str]
    count: int
    cell_key: int

    def to_list(self) -> list[Any]:
        return [self.measure, dict(self.dims), self.count, self.cell_key]

    def ident(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The cell's identity: the measure and its sorted (dimension, value) pairs."""
        return self.measure, tuple(sorted(self.dims.items()))

    @classmethod
    def from_list(cls, obj: Any) -> StatsCell:
        w = "stats.cell"
        if not isinstance(obj, list) or len(obj) != 4:
            raise MalformedError(f"{w}: expected [measure, dimensions, count, cell key]")
        measure, dims, count, key = obj
        # isinstance first: a list or map as measure is unhashable (TypeError in `in`).
        if not isinstance(measure, str) or measure not in codes.MEASURES:
            raise InvalidCodeError(f"{w}: not a known measure")
        d = as_map(dims, w)
        breakdown = codes.MEASURES[measure]
        crossing_dims, max_cross = codes.crossing(measure)
        crossing = 0
        for dim, value in d.items():
            if breakdown is not None and dim == breakdown[0]:
                ok = codes.is_code(value, breakdown[1])
            elif dim in crossing_dims:
                crossing += 1
                ok = codes.is_code(value, codes.CROSS_DIMENSIONS[dim])
            else:
                raise InvalidCodeError(f"{w}: dimension not allowed for this measure")
            if not ok:
                raise InvalidCodeError(f"{w}.{dim}: not a known code")
        if crossing > max_cross:
            raise MalformedError(f"{w}: crossed by more than {max_cross} dimensions")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 10**9:
            raise MalformedError(f"{w}: count out of range")
        if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < KEY_SPACE:
            raise MalformedError(f"{w}: cell key out of range")
        return assemble(cls, measure=measure, dims=dict(d), count=count, cell_key=key)


@dataclass(frozen=True)
class StatsReport:
    """Counts for one period, sealed to the hub. No personal data by construction."""

    TYPE = "stats.report"
    period: str
    revision: int
    generated: int
    cells: tuple[StatsCell, ...]
    dataset: str = codes.DATASET
    version: int = codes.DATASET_VERSION

    def to_map(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "period": self.period,
            "revision": self.revision,
            "generated": self.generated,
            "cells": [c.to_list() for c in self.cells],
        }

    @classmethod
    def from_map(cls, obj: Any) -> StatsReport:
        w = "stats.report"
        m = as_map(obj, w)
        held = m.get("version")
        # isinstance first: a list is unhashable (TypeError in `in`), True equals 1.
        supported = (
            isinstance(held, int) and not isinstance(held, bool) and held in codes.DATASET_VERSIONS
        )
        if m.get("dataset") == codes.DATASET and not supported:
            # Version 1 had no cell keys; the hub cannot protect its numbers.
            raise UnsupportedVersionError(
                f"{w}: dataset {codes.DATASET} version "
                f"{' or '.join(map(str, sorted(codes.DATASET_VERSIONS)))} is required "
                "(cells with cell keys); update the node"
            )
        exact_keys(m, _REPORT_KEYS, _NONE, w)
        if m["dataset"] != codes.DATASET:
            raise InvalidCodeError(f"{w}: unknown dataset")
        version = field_int(m, "version", w)
        cells = tuple(StatsCell.from_list(c) for c in field_list(m, "cells", w, max_len=MAX_CELLS))
        if len({c.ident() for c in cells}) != len(cells):
            raise MalformedError(f"{w}: a cell appears twice")
        first = min(codes.DATASET_VERSIONS)
        if any(codes.MEASURES_SINCE.get(c.measure, first) > version for c in cells):
            # An older node never counted it; taking it would mix definitions.
            raise InvalidCodeError(f"{w}: a measure not in dataset version {version}")
        return assemble(
            cls,
            period=field_str(m, "period", w, pattern=codes.PERIOD),
            revision=field_int(m, "revision", w, lo=1, hi=1_000_000),
            generated=field_int(m, "generated", w),
            cells=cells,
            dataset=codes.DATASET,
            version=version,
        )


@dataclass(frozen=True)
class ExpiryNotice:
    """From the hub to a sender: a message expired undelivered and was removed."""

    TYPE = "relay.expired"
    of_msg_id: str
    recipient: str
    expired: int

    def to_map(self) -> dict[str, Any]:
        return {"of": self.of_msg_id, "to": self.recipient, "expired": self.expired}

    @classmethod
    def from_map(cls, obj: Any) -> ExpiryNotice:
        w = "relay.expired"
        m = as_map(obj, w)
        exact_keys(m, _EXPIRY_KEYS, _NONE, w)
        return assemble(
            cls,
            of_msg_id=field_str(m, "of", w, pattern=MESSAGE_ID),
            recipient=field_str(m, "to", w, pattern=NODE_ID),
            expired=field_int(m, "expired", w),
        )


Payload = (
    ReferralOffer
    | ReferralReply
    | ReferralStatus
    | ReferralWithdraw
    | ReferralErase
    | ErasureReceipt
    | Receipt
    | StatsReport
    | ExpiryNotice
)

_DECODERS: dict[str, Callable[[Any], Payload]] = {
    ReferralOffer.TYPE: ReferralOffer.from_map,
    ReferralReply.TYPE: ReferralReply.from_map,
    ReferralStatus.TYPE: ReferralStatus.from_map,
    ReferralWithdraw.TYPE: ReferralWithdraw.from_map,
    ReferralErase.TYPE: ReferralErase.from_map,
    ErasureReceipt.TYPE: ErasureReceipt.from_map,
    Receipt.TYPE: Receipt.from_map,
    StatsReport.TYPE: StatsReport.from_map,
    ExpiryNotice.TYPE: ExpiryNotice.from_map,
}
MESSAGE_TYPES = frozenset(_DECODERS)


def payload_type(payload: Payload) -> str:
    return payload.TYPE


def decode_payload(type_: str, obj: Any) -> Payload:
    decoder = _DECODERS.get(type_) if isinstance(type_, str) else None
    if decoder is None:
        raise UnknownTypeError("unknown message type")
    return decoder(obj)
