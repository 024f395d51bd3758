"""The node's local HTTP API for counselling apps: `create_app(settings)`.

Spec-first: node/api/openapi.yaml is the contract. Middlewares, outside in:

1. `problem_middleware` turns anything that escapes into an RFC 9457 problem;
   an unexpected exception becomes a 500 with no detail (and a log event with
   its type only).
2. `auth_middleware` refuses every route without a valid bearer token, except
   the ones in `PUBLIC_PATHS` (health, the spec itself and the administrator's
   status page /status, which hold no personal data; see node/api/status_page.py),
   and takes the optional `X-Acting-User` header (a pseudonymous staff id for
   the audit log; 400 when malformed, the value never echoed).
3. `openapi_middleware` refuses JSON nested too deep or holding lone
   surrogates (node/api/jsonbody.py), validates the request against the spec
   (node/api/contract.py), runs the handler and turns a `NodeError` into its
   problem. Under the test suite's contract check (node/api/contract_check.py)
   it also validates every response and cross-checks the request with
   openapi-core; a response that breaks the contract is logged and replaced
   by a 500, so spec drift fails a test instead of reaching an app.

The database is opened in a cleanup_ctx; so is anything passed as
`background` (the sync worker plugs in there, see node/cli.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from importlib import resources

import structlog
from aiohttp import web

from node.api import (
    audit_handlers,
    erasure_handlers,
    export_handlers,
    handlers,
    keys,
    retention_handlers,
    stats_handlers,
)
from node.api.contract import RequestContract
from node.api.contract_check import ContractCheck, enabled
from node.api.jsonbody import BadJsonBody, check_json_body
from node.api.problems import problem
from node.api.status_page import status_page
from node.clock import Deps
from node.config import NodeSettings, load_keys
from node.errors import NodeError
from node.storage.idempotency import HEADER as IDEMPOTENCY_HEADER
from node.storage.idempotency import KEY as IDEMPOTENCY_KEY
from node.storage.idempotency import IdempotentRequest, Replayed, fingerprint
from node.storage.store import NodeStore
from support.files import restrict_directory

log = structlog.get_logger()

API = "/api/v1"
SPEC_PATHS = frozenset({f"{API}/openapi.yaml", f"{API}/openapi.json"})
PUBLIC_PATHS = frozenset({"/health", "/status"}) | SPEC_PATHS
# Methods that change something: the ones an Idempotency-Key applies to.
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The largest request body the API reads (aiohttp's default, stated): a case,
# a consent or a referral is a few kilobytes.
MAX_BODY = 1 << 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The acting staff member's pseudonymous id, recorded on the request's audit rows.
ACTING_USER_HEADER = "X-Acting-User"
ACTING_USER = re.compile(r"[A-Za-z0-9._:-]{1,64}")
Background = Callable[[web.Application], AsyncIterator[None]]


def load_spec_text() -> bytes:
    """node/api/openapi.yaml, the spec as written."""
    return resources.files("node.api").joinpath("openapi.yaml").read_bytes()


def load_spec_json() -> bytes:
    """node/api/openapi.json, the same document made by `make spec`."""
    return resources.files("node.api").joinpath("openapi.json").read_bytes()


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NodeError as exc:
        return problem(exc.status, str(exc), kind=exc.kind, title=exc.title)
    except web.HTTPRequestEntityTooLarge:
        return problem(413, f"the request body is larger than the limit of {MAX_BODY} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(exc.status, exc.reason)
    except ConnectionError:
        # The app went away (e.g. mid-body): nothing broken, and the answer will
        # most likely not arrive; no traceback for it.
        log.info("api.client_gone", path=request.path)
        return problem(400, "the connection closed before the request ended")
    except Exception as exc:  # noqa: BLE001 -- outermost request boundary: answer 500, log the type only
        log.error("api.unexpected_error", error=type(exc).__name__, path=request.path)
        return problem(500, "the node could not process the request")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    app_name = None
    if scheme.lower() == "bearer" and token.strip():
        store = request.app[keys.STORE]
        app_name = await store.run(store.access.app_for, token.strip())
    if app_name is None:
        return problem(401, "a valid bearer token is required", kind="unauthorized")
    request[keys.APP_NAME] = app_name
    actor = request.headers.get(ACTING_USER_HEADER)
    if actor is not None:
        if not ACTING_USER.fullmatch(actor):
            # Never echoed: the app chose it, and it may be a name after all.
            return problem(
                400,
                f"header {ACTING_USER_HEADER} must be 1-64 letters, digits, dots, colons,"
                " dashes or underscores (a pseudonymous staff id)",
                kind="invalid-request",
            )
        request[keys.ACTING_USER] = actor
    return await handler(request)


@web.middleware
async def openapi_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    http_exc = request.match_info.http_exception
    if http_exc is not None:
        raise http_exc
    body = await request.read()
    if body and "json" in request.content_type:
        try:
            check_json_body(body)
        except BadJsonBody as exc:
            return problem(400, str(exc), kind="invalid-request")
    resource = request.match_info.route.resource
    refusal = request.app[keys.CONTRACT].check(
        request.method,
        resource.canonical if resource is not None else None,
        request.match_info,
        request.query,
        request.content_type,
        body,
    )
    check = request.app.get(keys.CONTRACT_CHECK)
    if check is not None:
        theirs = check.request_status(request, body)
        ours = refusal.status if refusal is not None else None
        if theirs != ours:
            log.error("api.request_check_disagrees", path=_route(request), ours=ours, theirs=theirs)
            return problem(500, "the node's request check disagrees with its API specification")
    if refusal is not None:
        return problem(refusal.status, refusal.detail, kind="invalid-request")
    refused = _idempotency_key(request, body)
    if refused is not None:
        return refused
    try:
        response = await handler(request)
    except NodeError as exc:
        response = problem(exc.status, str(exc), kind=exc.kind, title=exc.title)
    except Replayed as replay:
        response = _replay(replay)
    if check is not None and isinstance(response, web.Response) and request.path not in SPEC_PATHS:
        # The spec routes serve a static file; everything else is checked.
        error = check.response_error(request, body, response)
        if error:
            log.error(
                "api.response_breaks_contract",
                path=_route(request),
                status=response.status,
                error=error,
            )
            return problem(500, "the node produced a response outside its API contract")
    return response


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "?"


def _idempotency_key(request: web.Request, body: bytes) -> web.Response | None:
    """Note a change's Idempotency-Key for the handler's transaction
    (node/storage/idempotency.py); a malformed key is refused, never echoed."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None or request.method not in CHANGES:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        return problem(
            400,
            f"header {IDEMPOTENCY_HEADER} must be 1-128 letters, digits, dots, colons,"
            " underscores or dashes (e.g. a UUID)",
            kind="invalid-request",
        )
    request[keys.IDEMPOTENCY] = IdempotentRequest(
        app=request[keys.APP_NAME],
        key=key,
        fingerprint=fingerprint(request.method, request.path_qs, body),
    )
    return None


def _replay(replay: Replayed) -> web.Response:
    """The stored first answer to a retried request, or a refusal when the key
    came with another request."""
    if replay.answer.fingerprint != replay.request.fingerprint:
        return problem(
            422,
            f"this {IDEMPOTENCY_HEADER} was used for another request; use a new key"
            " for a new request",
            kind="idempotency-key-reused",
        )
    headers = {"Idempotent-Replayed": "true"}
    if replay.answer.status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(
        status=replay.answer.status,
        body=replay.answer.body,
        content_type="application/json",
        headers=headers,
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def spec_yaml(request: web.Request) -> web.Response:
    return web.Response(body=request.app[keys.SPEC_YAML], content_type="application/yaml")


async def spec_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[keys.SPEC_JSON], content_type="application/json")


def create_app(
    settings: NodeSettings,
    *,
    deps: Deps | None = None,
    background: Sequence[Background] = (),
) -> web.Application:
    """The API application; the database opens when the app starts."""
    app = web.Application(
        middlewares=[problem_middleware, auth_middleware, openapi_middleware],
        client_max_size=MAX_BODY,
    )
    app[keys.SETTINGS] = settings
    app[keys.DEPS] = deps or Deps.system()
    app[keys.OUTBOX_LISTENERS] = []
    app[keys.STATS_QUEUED_LISTENERS] = []
    # The spec is written in YAML; the node reads the JSON `make spec` makes of
    # it (a running node loads no YAML parser: 2.3 MiB of an idle node).
    json_text = load_spec_json()
    document = json.loads(json_text)
    app[keys.SPEC_YAML] = load_spec_text()
    app[keys.SPEC_JSON] = json_text
    app[keys.CONTRACT] = RequestContract(document)
    if enabled():
        app[keys.CONTRACT_CHECK] = ContractCheck(document)
    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(stats_handlers.stats_ctx)
    app.cleanup_ctx.extend(background)
    app.router.add_get("/health", health)
    app.router.add_get("/status", status_page)
    app.router.add_get(f"{API}/openapi.yaml", spec_yaml)
    app.router.add_get(f"{API}/openapi.json", spec_json)
    handlers.add_routes(app.router, API)
    stats_handlers.add_routes(app.router, API)
    export_handlers.add_routes(app.router, API)
    erasure_handlers.add_routes(app.router, API)
    retention_handlers.add_routes(app.router, API)
    audit_handlers.add_routes(app.router, API)
    return app


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the key file and the database for the app's lifetime."""
    settings = app[keys.SETTINGS]
    if restrict_directory(settings.data_dir):
        # Like the keys and the database: nothing in the data directory is for others.
        log.warning("datadir.mode_restricted", mode="0700")
    app[keys.KEYS] = load_keys(settings.key_path)
    # The connection lives on its own thread (node/storage/thread.py); opening it
    # there runs the migrations off the loop too (the loop is not serving yet).
    store = NodeStore.open_threaded(
        settings.db_path,
        app[keys.KEYS],
        app[keys.DEPS],
        message_ttl=settings.sync.message_ttl,
        answer_within_days=settings.referrals.answer_within_days,
    )
    app[keys.STORE] = store
    log.info("api.store_opened")
    yield
    store.close()
