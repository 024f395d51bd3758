"""The node's own request validation (node/api/contract.py) and the suite's cross-check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api import keys
from node.api.app import create_app, load_spec_json, load_spec_text
from node.api.contract import RequestContract, SpecError, json_schema
from node.api.contract_check import ENV
from tests.node.conftest import CASE, ApiNode

Client = TestClient[web.Request, web.Application]
API = "/api/v1"
DOCUMENT: dict[str, Any] = yaml.safe_load(load_spec_text())


def _check(contract: RequestContract, method: str, path: str | None, **parts: Any) -> Any:
    return contract.check(
        method,
        path,
        parts.get("match_info", {}),
        parts.get("query", {}),
        parts.get("content_type", "application/json"),
        parts.get("body", b""),
    )


def test_every_operation_of_the_spec_compiles() -> None:
    contract = RequestContract(DOCUMENT)
    for path, item in DOCUMENT["paths"].items():
        for method in ("get", "put", "post", "delete", "patch"):
            if method in item:
                op = contract.operation(method.upper(), path)
                assert op is not None, (method, path)
                assert (op.body is not None) == ("requestBody" in item[method]), (method, path)


def test_nullable_becomes_a_null_type_and_a_null_enum_value() -> None:
    doc = {"components": {"schemas": {"G": {"type": "string", "enum": ["a"], "nullable": True}}}}
    schema = json_schema(doc, {"$ref": "#/components/schemas/G"})
    assert schema == {"type": ["string", "null"], "enum": ["a", None]}
    assert json_schema(doc, {"type": "integer"}) == {"type": "integer"}


def test_a_reference_outside_the_document_is_refused() -> None:
    with pytest.raises(SpecError, match="only local references"):
        json_schema({}, {"$ref": "other.yaml#/x"})


def test_a_reference_cycle_is_refused() -> None:
    doc: dict[str, Any] = {
        "components": {"schemas": {"L": {"type": "array", "items": {"$ref": "#/x/L"}}}}
    }
    doc["x"] = doc["components"]["schemas"]
    with pytest.raises(SpecError, match="cycle"):
        json_schema(doc, {"$ref": "#/x/L"})


def test_parameters_are_cast_then_checked() -> None:
    contract = RequestContract(DOCUMENT)
    refused = _check(contract, "GET", f"{API}/cases", query={"limit": "many"})
    assert (refused.status, refused.detail) == (400, "query parameter limit: must be an integer")
    refused = _check(contract, "GET", f"{API}/cases", query={"limit": "0"})
    assert refused.detail == "query parameter limit: must be at least 1"
    assert _check(contract, "GET", f"{API}/cases", query={"limit": "20"}) is None
    refused = _check(contract, "GET", f"{API}/cases/{{case_id}}", match_info={"case_id": "x"})
    assert refused.detail.startswith("path parameter case_id: must match the pattern")


def test_bodies_need_json_of_the_schema() -> None:
    contract = RequestContract(DOCUMENT)
    path = f"{API}/cases"
    assert _check(contract, "POST", path).detail == "a JSON request body is required"
    refused = _check(contract, "POST", path, body=b"{}", content_type="text/plain")
    assert refused.status == 415
    assert _check(contract, "POST", path, body=b"{no json").status == 400
    assert _check(contract, "POST", path, body=yaml.safe_dump(CASE).encode()).status == 400
    assert _check(contract, "POST", path, body=json.dumps(CASE).encode()) is None
    bad_date = {**CASE, "opened": "2026-02-30"}
    refused = _check(contract, "POST", path, body=json.dumps(bad_date).encode())
    assert refused is not None
    assert "body.opened: must be a date (YYYY-MM-DD)" in refused.detail


def test_an_unknown_route_or_method_is_refused() -> None:
    contract = RequestContract(DOCUMENT)
    assert _check(contract, "GET", None).status == 404
    assert _check(contract, "PUT", f"{API}/cases").status == 405


def test_a_production_node_loads_no_openapi_core_jinja2_or_yaml_at_start() -> None:
    """Memory of an idle node (issue 11): openapi-core is the test suite's,
    Jinja2 is loaded when a page is first rendered (support/templates.py), and
    the spec is read as JSON."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    code = (
        "import sys; from node.api.app import create_app; import node.cli; "
        "sys.exit(sorted({'openapi_core', 'jinja2', 'yaml'} & set(sys.modules)) or None)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, check=False, timeout=60)
    assert done.returncode == 0


async def test_the_suites_check_fails_a_request_the_two_judge_differently(
    api_node: ApiNode, aiohttp_client: Any
) -> None:
    """A node whose own check drifted from the spec answers 500 under the suite's check."""
    drifted = yaml.safe_load(load_spec_text())
    params = drifted["paths"][f"{API}/cases"]["get"]["parameters"]
    next(p for p in params if p["name"] == "limit")["schema"]["maximum"] = 10_000
    app = create_app(api_node.settings, deps=api_node.deps)
    app[keys.CONTRACT] = RequestContract(drifted)
    client: Client = await aiohttp_client(app)
    resp = await client.get(f"{API}/cases?limit=1000", headers=api_node.auth)
    assert resp.status == 500
    resp = await client.get(f"{API}/cases?limit=20", headers=api_node.auth)
    assert resp.status == 200


def test_the_json_spec_the_node_reads_is_made_from_the_yaml() -> None:
    """node/api/openapi.json is what `make spec` makes of openapi.yaml, byte for byte."""
    made = json.dumps(DOCUMENT, ensure_ascii=False, indent=1) + "\n"
    assert load_spec_json().decode("utf-8") == made, "node/api/openapi.json is stale: `make spec`"
