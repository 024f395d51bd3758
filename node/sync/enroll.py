"""`mbe-node enroll`: join the hub with a one-time code.

Order matters for the administrator: the code is parsed first, so a typo is
reported before any network call; the hub's keys are compared with the
fingerprint in the code before anything else in the answer is trusted; only a
fully verified answer is saved, enrollment and directory in one transaction,
so a failed attempt leaves the node as it was. The hub commits an enrollment
before it answers; if the answer is lost (timeout, proxy reset, a crash here
before the commit), nothing is saved and running `mbe-node enroll` again with
the same code works: the hub answers a used code presented with the same keys
again. `AlreadyEnrolled` therefore means the enrollment was really saved.
"""

from __future__ import annotations

import structlog

from node.sync.client import HubClient, normalize_hub_url
from node.sync.errors import (
    AlreadyEnrolled,
    BadEnrollmentCode,
    EnrollmentRefused,
    HubKeyMismatch,
    HubRefused,
)
from node.sync.ports import EnrollmentState, SyncStore
from node.sync.settings import SyncSettings
from protocol.enrollment import EnrollmentCode
from protocol.errors import BadEnrollmentCodeError, FingerprintMismatchError
from protocol.keys import PrivateKeys
from support.clock import Deps

log = structlog.get_logger()


async def enroll(
    settings: SyncSettings,
    store: SyncStore,
    keys: PrivateKeys,
    hub_url: str,
    code_text: str,
    *,
    deps: Deps | None = None,
) -> EnrollmentState:
    """Enroll this node with the hub at `hub_url`; raise an EnrollmentError subclass or
    HubUnreachable, each with a one-line message for the administrator."""
    try:
        code = EnrollmentCode.parse(code_text)
    except BadEnrollmentCodeError as exc:
        raise BadEnrollmentCode(f"enrollment code not accepted: {exc}") from None
    url = normalize_hub_url(hub_url)
    deps = deps or Deps.system()
    held = store.load_enrollment()
    if held is not None:
        raise AlreadyEnrolled(
            f"this node is already enrolled as {held.node_id} with {held.hub_url}; "
            "use a fresh data directory to enroll again"
        )
    async with HubClient(
        url,
        keys=keys,
        node_id=None,
        request_timeout=settings.request_timeout,
        deps=deps,
    ) as client:
        try:
            result = await client.enroll(code, now=deps.clock.now())
        except FingerprintMismatchError:
            log.warning("enroll.fingerprint_mismatch", hub=url)
            raise HubKeyMismatch(
                f"DANGER: the hub at {url} presented keys that do not match the enrollment "
                "code (possible man in the middle); nothing was saved, check the URL and code"
            ) from None
        except HubRefused as exc:
            raise EnrollmentRefused(
                f"the hub refused the enrollment code ({exc.problem}): {exc.detail}"
            ) from None
    state = EnrollmentState(
        node_id=result.node_id,
        hub_url=url,
        hub_keys=result.hub_keys,
        certificate=result.certificate_bytes,
        enrolled_at=deps.clock.now(),
    )
    store.complete_enrollment(state, result.directory.version, result.directory_bytes)
    log.info(
        "enroll.done",
        node_id=result.node_id,
        hub=url,
        directory_version=result.directory.version,
    )
    return state
