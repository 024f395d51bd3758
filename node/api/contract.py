"""Request validation against node/api/openapi.yaml, compiled once at start-up.

Every request is checked against its operation in the spec before a handler
sees it: path and query parameters (cast from text, then their schema), the
body's media type and its JSON schema. The first violated part answers 400
(415 for a body that is not JSON), naming the field and the rule, never the
value (node/api/problems.py).

Why not a general OpenAPI library at run time: the node used openapi-core for
this and for checking its own responses. On the busiest path (a referral) its
checks were 45% of the node's CPU samples, and the library held 31 MiB of a
86 MB idle node. The spec uses a small part of OpenAPI 3.0 (JSON bodies,
string and integer parameters, local `$ref`s, `nullable`), so this module
translates each operation's schemas into plain JSON Schema (draft 4, the
dialect OpenAPI 3.0 schemas are based on) once, and checks with `jsonschema`.
The test suite keeps openapi-core: with `MBE_NODE_CONTRACT_CHECK=1` (the suite
sets it) every response is checked against the spec and every request is
checked by both, so a request this module and openapi-core judge differently
fails the test (node/api/contract_check.py).

Parameters of the spec that the node checks before this module (the
`X-Acting-User` header, see node/api/app.py) are not repeated here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from node.api.problems import schema_errors_detail

METHODS = ("get", "put", "post", "delete", "patch")
JSON = "application/json"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE.fullmatch(value):
        return False
    dt.date.fromisoformat(value)
    return True


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.fullmatch(value):
        return False
    dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


@_FORMATS.checks("byte", raises=(binascii.Error, ValueError))
def _is_base64(value: object) -> bool:
    if not isinstance(value, str):
        return True
    base64.b64decode(value, validate=True)
    return True


class SpecError(ValueError):
    """The spec uses a part of OpenAPI this module does not implement (a bug of ours)."""


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    """Follow one local `$ref` (`#/a/b`) of the document, if `node` is one."""
    if isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise SpecError(f"only local references are supported: {ref!r}")
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        return _resolve(document, target)
    return node


def json_schema(document: Mapping[str, Any], schema: Any, depth: int = 0) -> Any:
    """An OpenAPI 3.0 schema as self-contained draft-4 JSON Schema.

    References are inlined (the spec has no recursive schema; a cycle would end
    in SpecError). `nullable: true` becomes `null` among the types (and the
    enum values); everything else is draft 4 already.
    """
    if depth > 32:
        raise SpecError("schema references nest too deeply (a cycle?)")
    schema = _resolve(document, schema)
    if isinstance(schema, list):
        return [json_schema(document, s, depth + 1) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in {"nullable", "description", "example", "readOnly", "writeOnly"}:
            continue
        if key in {"properties", "patternProperties"}:
            out[key] = {k: json_schema(document, v, depth + 1) for k, v in value.items()}
        elif key in {"items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"}:
            out[key] = json_schema(document, value, depth + 1)
        else:
            out[key] = value
    if schema.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out and "enum" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path" or "query"
    required: bool
    kind: str | None  # the schema's type, for casting the text
    validator: Draft4Validator

    @property
    def where(self) -> str:
        return f"{self.location} parameter {self.name}"


@dataclass(frozen=True)
class Operation:
    parameters: tuple[Parameter, ...]
    body_required: bool
    body: Draft4Validator | None  # None: the operation takes no body
    body_types: frozenset[str]


@dataclass(frozen=True)
class Refusal:
    """Why a request breaks the contract: HTTP status and a value-free detail."""

    status: int
    detail: str


def _parameters(document: Mapping[str, Any], path_item: Any, op: Any) -> Iterator[Parameter]:
    declared: dict[tuple[str, str], Any] = {}
    for raw in [*path_item.get("parameters", ()), *op.get("parameters", ())]:
        prm = _resolve(document, raw)
        declared[(prm["in"], prm["name"])] = prm  # an operation's own overrides the path's
    for (location, name), prm in declared.items():
        if location == "header":
            continue  # checked by the node itself (app.py), see the module docstring
        if location not in {"path", "query"}:
            raise SpecError(f"parameters in {location} are not supported")
        schema = json_schema(document, prm.get("schema", {}))
        kind = schema.get("type") if isinstance(schema.get("type"), str) else None
        if kind not in {None, "string", "integer", "boolean"}:
            raise SpecError(f"parameter {name}: type {kind} is not supported")
        yield Parameter(
            name=name,
            location=location,
            required=bool(prm.get("required")) or location == "path",
            kind=kind,
            validator=Draft4Validator(schema, format_checker=_FORMATS),
        )


def _operation(document: Mapping[str, Any], path_item: Any, op: Any) -> Operation:
    body = _resolve(document, op.get("requestBody"))
    validator = None
    types: frozenset[str] = frozenset()
    if body is not None:
        content = body.get("content", {})
        types = frozenset(content)
        if types != {JSON}:
            raise SpecError("only application/json request bodies are supported")
        schema = json_schema(document, content[JSON].get("schema", {}))
        Draft4Validator.check_schema(schema)
        validator = Draft4Validator(schema, format_checker=_FORMATS)
    return Operation(
        parameters=tuple(_parameters(document, path_item, op)),
        body_required=bool(body and body.get("required")),
        body=validator,
        body_types=types,
    )


def _cast(kind: str | None, text: str) -> Any:
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d{1,18}", text):
            raise ValueError
        return int(text)
    if kind == "boolean":
        if text not in {"true", "false"}:
            raise ValueError
        return text == "true"
    return text


_CAST_RULES = {"integer": "an integer", "boolean": "true or false"}


class RequestContract:
    """The spec's operations, keyed by (METHOD, path template as in the spec)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._operations: dict[tuple[str, str], Operation] = {}
        for path, item in document.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    op = _operation(document, item, item[method])
                    self._operations[(method.upper(), path)] = op

    def operation(self, method: str, path: str) -> Operation | None:
        return self._operations.get((method.upper(), path))

    def check(
        self,
        method: str,
        template: str | None,
        match_info: Mapping[str, str],
        query: Mapping[str, str],
        content_type: str,
        body: bytes,
    ) -> Refusal | None:
        """None if the request keeps the contract, else the first part that breaks it."""
        if template is None:
            return Refusal(404, "no such resource")
        op = self.operation(method, template)
        if op is None:
            return Refusal(405, "method not allowed on this resource")
        for prm in op.parameters:
            source = match_info if prm.location == "path" else query
            text = source.get(prm.name)
            if text is None:
                if prm.required:
                    return Refusal(400, f"{prm.where} is required")
                continue
            try:
                value = _cast(prm.kind, text)
            except ValueError:
                return Refusal(400, f"{prm.where}: must be {_CAST_RULES[str(prm.kind)]}")
            errors = _errors(prm.validator, value)
            if errors:
                return Refusal(400, schema_errors_detail(errors, prm.where))
        return _check_body(op, content_type, body)


def _check_body(op: Operation, content_type: str, body: bytes) -> Refusal | None:
    if op.body is None:
        return None
    if not body:
        return Refusal(400, "a JSON request body is required") if op.body_required else None
    if content_type not in op.body_types:
        return Refusal(415, "the request body must be application/json")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Refusal(400, "the request body is not valid JSON of the expected shape")
    errors = _errors(op.body, data)
    return Refusal(400, schema_errors_detail(errors, "body")) if errors else None


def _errors(validator: Draft4Validator, value: Any) -> list[ValidationError]:
    return list(validator.iter_errors(value))
