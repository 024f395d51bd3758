"""POST /v1/stats: a node hands the hub its report for one period (docs/hub-api.md).

The body is one envelope sealed to the hub (recipient `hub`) whose inner
message is signed by the node and carries a `stats.report`. Checks, in order:
request signature (the same as the relay), body size, envelope decoding,
envelope sender is the authenticated node, opening and signature check with
the node's keys from its site record, payload type, period has ended, margins
add up, then the revision rule in `store.store_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from hub.context import DB, DEPS, KEYS, SETTINGS
from hub.errors import Problem
from hub.handlers import authenticated
from hub.problems import from_protocol
from hub.stats.aggregate import margin_problems
from hub.stats.errors import PeriodError
from hub.stats.periods import parse_period
from hub.stats.store import store_report
from hub.storage.sites import get_site
from protocol.envelope import MAX_ENVELOPE, Envelope, InnerMessage, open_envelope
from protocol.errors import BadSignatureError, ProtocolError
from protocol.hub_api import ProblemKind
from protocol.ids import HUB_ID
from protocol.keys import PrivateKeys, PublicKeys
from protocol.payloads import StatsReport
from support.offload import decode_off_loop

log = structlog.get_logger()


def _decode(body: bytes) -> Envelope:
    try:
        return Envelope.decode(body)
    except ProtocolError as exc:
        raise from_protocol(exc, "stats") from None


def _open(
    envelope: Envelope, hub_keys: PrivateKeys, signers: Sequence[PublicKeys], now: int
) -> InnerMessage:
    """Open the envelope with the first of the node's keys its signature verifies with."""
    failure: ProtocolError = BadSignatureError("no key to check")
    for signer in signers:
        # During a key rotation overlap the report may be signed with the previous key.
        try:
            return open_envelope(envelope, hub_keys, HUB_ID, signer, now=now)
        except BadSignatureError as exc:
            failure = exc
        except ProtocolError as exc:
            raise from_protocol(exc, "stats") from None
    raise from_protocol(failure, "stats")


async def submit_report(request: web.Request) -> web.Response:
    app = request.app
    if request.content_length is not None and request.content_length > MAX_ENVELOPE:
        raise Problem(
            ProblemKind.TOO_LARGE, 413, f"a statistics envelope is at most {MAX_ENVELOPE} bytes"
        )
    node, body = await authenticated(request, max_body=MAX_ENVELOPE)
    if len(body) > MAX_ENVELOPE:
        raise Problem(
            ProblemKind.TOO_LARGE, 413, f"a statistics envelope is at most {MAX_ENVELOPE} bytes"
        )
    # Decoding, decrypting and checking up to a 1 MiB report run in a worker
    # thread, not on the event loop (support/offload.py).
    envelope = await decode_off_loop(len(body), _decode, body)
    if envelope.sender != node:
        raise Problem(
            ProblemKind.FORBIDDEN, 403, "stats: the envelope's sender is not the signing node"
        )
    site = await app[DB].run(get_site, node)
    if site is None or site.keys is None:  # authenticated() has checked this; a revoke raced
        raise Problem(ProblemKind.UNKNOWN_NODE, 401, "this node is not enrolled with the hub")
    now = app[DEPS].clock.now()
    signers = site.keys_valid_at(now)
    inner = await decode_off_loop(len(body), _open, envelope, app[KEYS], signers, now)
    report = inner.payload
    if not isinstance(report, StatsReport):
        raise Problem(
            ProblemKind.UNKNOWN_TYPE, 400, "stats: the sealed message is not a stats.report"
        )
    try:
        period = parse_period(report.period)
    except PeriodError as exc:
        raise Problem(ProblemKind.MALFORMED, 400, f"stats: {exc}") from None
    settings = app[SETTINGS].stats
    today = datetime.fromtimestamp(now, ZoneInfo(settings.timezone)).date()
    if not period.is_over(today):
        raise Problem(
            ProblemKind.PERIOD_NOT_OVER,
            422,
            f"stats: period {period.id} has not ended; report it after",
        )
    problems = margin_problems(report)
    if problems:
        raise Problem(ProblemKind.INCONSISTENT_REPORT, 422, "stats: " + "; ".join(problems[:10]))
    stored = await app[DB].run(store_report, node, report, envelope.msg_id, now)
    log.info(
        "stats.stored",
        node=node,
        period=stored.period,
        revision=stored.revision,
        duplicate=stored.duplicate,
        cells=len(report.cells),
    )
    return web.json_response({"period": stored.period, "revision": stored.revision, "stored": True})
