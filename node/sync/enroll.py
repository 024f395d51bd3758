"""`mbe-node enroll`: join the hub with a one-time code; `mbe-node hub-urls`: where it is.

Order matters for the administrator: the code is parsed first, so a typo is
reported before any network call; the hub's keys are compared with the
fingerprint in the code before anything else in the answer is trusted; only a
fully verified answer is saved, enrollment and directory in one transaction,
so a failed attempt leaves the node as it was. The hub commits an enrollment
before it answers; if the answer is lost (timeout, proxy reset, a crash here
before the commit), nothing is saved and running `mbe-node enroll` again with
the same code works: the hub answers a used code presented with the same keys
again. `AlreadyEnrolled` therefore means the enrollment was really saved.

Several hub URLs (node/sync/hub_urls.py): the enrollment request goes to the
first that answers, in order. That retry is safe for the same reason as a
re-run: the code is single-use, but the hub answers it again for the same keys,
and only for them. Before the code is used, every URL that answers
`GET /v1/info` must present the keys the code names, so a mistyped second URL
is found now rather than on the day the first hub is down. `hub-urls` changes
the list of an enrolled node with the same check against the enrolled hub's
keys; a URL that does not answer now is accepted (with a warning): the
administrator may be listing a hub that is being set up, or one that is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from node.sync.client import HubClient, HubInfo
from node.sync.errors import (
    AlreadyEnrolled,
    BadEnrollmentCode,
    EnrollmentRefused,
    HubKeyMismatch,
    HubRefused,
    HubUnreachable,
    NotEnrolled,
    OtherHub,
    SyncError,
)
from node.sync.hub_urls import parse_hub_urls
from node.sync.ports import EnrollmentState, SyncStore
from node.sync.settings import SyncSettings
from protocol.enrollment import EnrollmentCode
from protocol.errors import BadEnrollmentCodeError, FingerprintMismatchError
from protocol.keys import PrivateKeys, PublicKeys
from support.clock import Deps

log = structlog.get_logger()


async def enroll(
    settings: SyncSettings,
    store: SyncStore,
    keys: PrivateKeys,
    hub_url: str | Sequence[str],
    code_text: str,
    *,
    deps: Deps | None = None,
) -> EnrollmentState:
    """Enroll this node with the hub at `hub_url` (one URL, or several in order of
    preference); raise an EnrollmentError subclass, BadHubUrl or HubUnreachable,
    each with a one-line message for the administrator."""
    try:
        code = EnrollmentCode.parse(code_text)
    except BadEnrollmentCodeError as exc:
        raise BadEnrollmentCode(f"enrollment code not accepted: {exc}") from None
    urls = parse_hub_urls([hub_url] if isinstance(hub_url, str) else hub_url)
    deps = deps or Deps.system()
    held = store.load_enrollment()
    if held is not None:
        raise AlreadyEnrolled(
            f"this node is already enrolled as {held.node_id} with {held.hub_url}; "
            "use a fresh data directory to enroll again"
        )
    if len(urls) > 1:
        answers = await survey(urls, keys, settings.request_timeout, deps)
        _unreachable(answers, lambda url, hub_keys: _check_code(code, hub_keys, url))
    async with HubClient(
        urls,
        keys=keys,
        node_id=None,
        request_timeout=settings.request_timeout,
        deps=deps,
    ) as client:
        try:
            result = await client.enroll(code, now=deps.clock.now())
        except FingerprintMismatchError:
            raise _mismatch(client.hub_url) from None
        except HubRefused as exc:
            raise EnrollmentRefused(
                f"the hub refused the enrollment code ({exc.problem}): {exc.detail}"
            ) from None
        answered = client.hub_url
    state = EnrollmentState(
        node_id=result.node_id,
        hub_urls=urls,
        hub_keys=result.hub_keys,
        certificate=result.certificate_bytes,
        enrolled_at=deps.clock.now(),
    )
    store.complete_enrollment(state, result.directory.version, result.directory_bytes)
    log.info(
        "enroll.done",
        node_id=result.node_id,
        hub=answered,
        hub_urls=len(urls),
        directory_version=result.directory.version,
    )
    return state


def _mismatch(url: str) -> HubKeyMismatch:
    log.warning("enroll.fingerprint_mismatch", hub=url)
    return HubKeyMismatch(
        f"DANGER: the hub at {url} presented keys that do not match the enrollment "
        "code (possible man in the middle); nothing was saved, check the URL and code"
    )


def _check_code(code: EnrollmentCode, hub_keys: PublicKeys, url: str) -> None:
    """HubKeyMismatch unless `hub_keys` are the keys the code names."""
    try:
        code.check_hub(hub_keys)
    except FingerprintMismatchError:
        raise _mismatch(url) from None


async def survey(
    urls: Sequence[str], keys: PrivateKeys, request_timeout: float, deps: Deps
) -> dict[str, HubInfo | SyncError]:
    """`GET /v1/info` (unsigned) at each URL at once: its answer, or why there was none."""

    async def ask(url: str) -> HubInfo | SyncError:
        try:
            async with HubClient(
                url, keys=keys, node_id=None, request_timeout=request_timeout, deps=deps
            ) as client:
                return await client.info()
        except SyncError as exc:
            return exc

    answers = await asyncio.gather(*(ask(url) for url in urls))
    return dict(zip(urls, answers, strict=True))


def _unreachable(
    answers: dict[str, HubInfo | SyncError], check: Callable[[str, PublicKeys], None]
) -> dict[str, str]:
    """The URLs that did not answer, with why; `check` each hub's keys. A URL that
    answers but not as a hub (a 404, a malformed answer) is refused with OtherHub."""
    unreachable: dict[str, str] = {}
    for url, answer in answers.items():
        if isinstance(answer, HubUnreachable):
            unreachable[url] = str(answer)
        elif isinstance(answer, SyncError):
            raise OtherHub(f"{url} does not answer as a hub ({answer}); nothing was changed")
        else:
            check(url, answer.hub_keys)
    return unreachable


@dataclass(frozen=True)
class HubUrlsChanged:
    """What `mbe-node hub-urls` stored, and the URLs that did not answer just now."""

    node_id: str
    urls: tuple[str, ...]
    unreachable: dict[str, str]


async def change_hub_urls(
    settings: SyncSettings,
    store: SyncStore,
    keys: PrivateKeys,
    texts: Sequence[str],
    *,
    deps: Deps | None = None,
) -> HubUrlsChanged:
    """Replace the enrolled node's hub URLs after checking them; nothing changes when
    one is malformed (BadHubUrl) or answers as another hub (OtherHub)."""
    urls = parse_hub_urls(texts)
    state = store.load_enrollment()
    if state is None:
        raise NotEnrolled("this node is not enrolled yet; run `mbe-node enroll` first")

    enrolled = state.hub_keys

    def same_hub(url: str, hub_keys: PublicKeys) -> None:
        if hub_keys != enrolled:
            raise OtherHub(
                f"{url} is another hub (fingerprint {hub_keys.fingerprint()}), not the one"
                f" this node is enrolled with ({enrolled.fingerprint()}); nothing was changed"
            )

    answers = await survey(urls, keys, settings.request_timeout, deps or Deps.system())
    unreachable = _unreachable(answers, same_hub)
    store.set_hub_urls(urls)
    return HubUrlsChanged(state.node_id, urls, unreachable)
