"""Bugs the OpenAPI fuzzer found in the node, pinned down."""

from __future__ import annotations

from tests.node.conftest import CASE, make_office


def test_clearing_family_members_sets_none() -> None:
    """PATCH with family_members null (allowed by the spec) stores 0 instead of failing."""
    office = make_office("caritas-nbg")
    try:
        case_id = office.store.cases.create(dict(CASE))
        updated = office.store.cases.update(case_id, {"family_members": None})
        assert updated["family_members"] == 0
    finally:
        office.store.close()
