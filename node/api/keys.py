"""Typed keys of the aiohttp application and requests (no string keys, no globals)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from node.api.contract import RequestContract
from node.api.contract_check import ContractCheck
from node.clock import Deps
from node.config import NodeSettings
from node.storage.idempotency import IdempotentRequest
from node.storage.store import NodeStore
from protocol.keys import PrivateKeys

SETTINGS = web.AppKey("mbe_node_settings", NodeSettings)
DEPS = web.AppKey("mbe_node_deps", Deps)
KEYS = web.AppKey("mbe_node_keys", PrivateKeys)
STORE = web.AppKey("mbe_node_store", NodeStore)
CONTRACT = web.AppKey("mbe_node_contract", RequestContract)
# Only under the test suite's contract check (node/api/contract_check.py).
CONTRACT_CHECK = web.AppKey("mbe_node_contract_check", ContractCheck)
SPEC_YAML = web.AppKey("mbe_node_openapi_yaml", bytes)
SPEC_JSON = web.AppKey("mbe_node_openapi_json", bytes)
# Called (without arguments) after something was put into the outbox, so the
# sync worker can upload at once instead of at its next poll.
OUTBOX_LISTENERS = web.AppKey("mbe_node_outbox_listeners", list[Callable[[], None]])
# Called after a manual statistics submission was queued (the hub was not
# reachable), so the scheduler (node/jobs/stats_scheduler.py) retries soon.
STATS_QUEUED_LISTENERS = web.AppKey("mbe_node_stats_queued_listeners", list[Callable[[], None]])

APP_NAME = web.RequestKey("mbe_node_app_name", str)
# The pseudonymous id of the acting staff member (header X-Acting-User), if sent.
ACTING_USER = web.RequestKey("mbe_node_acting_user", str)
# A change sent with an Idempotency-Key header (node/storage/idempotency.py).
IDEMPOTENCY = web.RequestKey("mbe_node_idempotency", IdempotentRequest)
