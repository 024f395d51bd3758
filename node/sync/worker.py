"""The sync worker: a background task that moves messages between the database and the hub.

Delivery bookkeeping (magic-wormhole style): every message has an id; an
outgoing one leaves the outbox only when the hub answered that it committed it
durably; an incoming one is acknowledged to the hub only after
`apply_incoming` committed it locally, and its id is remembered so a
redelivery is dropped. Nothing about delivery lives only in memory: after a
restart the outbox is uploaded again and the hub hands out everything not yet
acknowledged, so a crash at any point costs at most a duplicate, which the
receiving side drops by id.

One cycle (`sync_once`): refresh the directory when due, upload the outbox in
batches, then page through the inbox from the start, then upload again what
applying the inbox queued (receipts, answers), so it does not wait a poll. The inbox cursor is kept
for one cycle only: acknowledged messages are deleted at the hub, so starting
from 0 each cycle yields exactly what is still unacknowledged, including a
message whose processing failed last time. A persistent cursor would skip it.

An upload the hub answers but cannot take now (its disk is full: `507
storage-full`; 503; 429 over the quota) does not stop receiving: such a hub
still hands out what it stores, and a node that only uploads before it reads
would stop receiving with it. The cycle notes the failure, drains the inbox,
skips the second upload and then raises the upload's `HubUnreachable`, so the
loop backs off (at least the answer's `Retry-After`, capped at `max_backoff`)
as for any failure. Without any answer (connection refused, timeout) the cycle
ends at once: the inbox would get none either. The outbox keeps every message
the hub did not acknowledge.

An outbox message whose expiry passed before the hub took it (the hub was
unreachable for longer than `message_ttl`), or that the hub refuses as
`expired`, goes to `outbox_expired`: the domain retires it and seals a new
message with a new id and expiry if the other office still needs it (a
withdrawal, reply or status; node/storage/redelivery.py). Uploading it would
only earn a refusal, and flagging it as rejected would lose it.

Refused envelopes (unknown or revoked sender, bad signature, tampering,
expiry) are recorded and then acknowledged, so the hub deletes them. Keeping
them would make every cycle fetch and refuse them again forever, and nothing
we could learn later makes a tampered or expired envelope valid. The two cases
where later knowledge could help are handled before refusing: an unknown
sender or a failing signature triggers one directory refresh per cycle (a new
office, a key rotation). When the directory itself cannot be obtained or
verified, messages are left at the hub untouched. The sender is not left
guessing: it never gets a receipt, and its referral expires visibly.

One message never blocks the inbox. When `apply_incoming` cannot apply a
verified message, the store says whether waiting can help:
`ApplyRefused` (or a `ProtocolError`, e.g. the answer cannot be sealed to the
sender's key) is permanent, so the message is recorded as refused and
acknowledged like a refused envelope; `ApplyDeferred` (the directory is
missing, expired or disagrees with the one the message was opened with) is
transient, so the message stays at the hub and comes back next cycle, bounded
by its expiry there. Either way the cycle goes on with the next message. After
a deferral the same sender's later messages wait too, so one office's messages
are applied in the order it sent them (a withdrawal must never overtake the
offer it withdraws); other offices' messages are not held up. Database errors
and anything unexpected concern the node, not the message: they end the cycle.

Wake-ups: `wake()` (the API put something in the outbox), a "mail" frame on
the push WebSocket, a "directory" frame announcing a version newer than the one
held (a new or revoked office must be usable at once, not after the hourly
`directory_refresh`), or the poll interval, whichever comes first. The hub
announces its newest version on every (re)connect, so an announcement missed
while disconnected is caught up then. After a
failure the worker waits a capped, fully jittered backoff; during it only push
(which proves the hub is back) cuts the wait short, so a busy API cannot turn
an outage into a tight retry loop.

Several hub URLs (node/sync/hub_urls.py): the client moves to the next URL
when one does not answer and stays with the one that answered; the push
channel connects to the URL in use, and after a drop to the next that
answers. The URL in use is recorded for the status views (`hub_in_use`) only
when it changes. A list changed by `mbe-node hub-urls` is read again every
`URLS_RECHECK` seconds, and at the next cycle after one no URL answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

import aiohttp
import structlog
from aiohttp import web

from node.sync.backoff import full_jitter
from node.sync.client import HubClient
from node.sync.errors import (
    ApplyDeferred,
    ApplyRefused,
    DirectoryRejected,
    HubRefused,
    HubResponseError,
    HubUnreachable,
    NotEnrolled,
    SyncError,
)
from node.sync.hub_urls import HubUrls
from node.sync.inbox import IncomingRefused, UnknownSender, decode_envelope, open_incoming
from node.sync.keyring import KeyRing, KeySource
from node.sync.ports import (
    STATE_CLOCK_OFFSET,
    STATE_DIRECTORY_VERSION,
    STATE_HUB_IN_USE,
    STATE_HUB_REACHABLE,
    STATE_LAST_ERROR,
    STATE_LAST_SYNC,
    STATE_PUSH_CONNECTED,
    EnrollmentState,
    OutgoingMessage,
    Runner,
    SyncStore,
    inline,
)
from node.sync.settings import SyncSettings
from protocol.documents import MAX_DIRECTORY_BYTES, Directory, verify_document
from protocol.envelope import Envelope, InnerMessage
from protocol.errors import ProtocolError
from protocol.hub_api import (
    NODE_WIDE,
    DirectoryFrame,
    InboxMessage,
    MailFrame,
    ProblemKind,
    decode_push_frame,
    problem_kind,
)
from protocol.keys import PrivateKeys
from support.clock import Deps, uniform

log = structlog.get_logger()

# Seconds between two records of `last_sync` (see SyncWorker._note_last_sync).
LAST_SYNC_EVERY = 10
# Seconds between two reads of the hub URLs from the store (`mbe-node hub-urls`).
URLS_RECHECK = 60.0

# Refusals that concern the node itself rather than one envelope: never flag a
# message as rejected because of them.


@dataclass(frozen=True)
class SyncReport:
    """What one cycle did (for tests, benchmarks and logs)."""

    uploaded: int = 0
    rejected: int = 0
    applied: int = 0
    duplicates: int = 0
    refused: int = 0
    # Left at the hub for a later cycle (ApplyDeferred, or held behind one).
    deferred: int = 0
    # Outbox messages past their expiry, retired (state-carrying ones re-sealed).
    expired: int = 0


@dataclass
class _Tally:
    uploaded: int = 0
    rejected: int = 0
    applied: int = 0
    duplicates: int = 0
    refused: int = 0
    deferred: int = 0
    expired: int = 0
    # Why the first message was deferred (for last_error); "" when none was.
    deferred_reason: str = ""

    def report(self) -> SyncReport:
        return SyncReport(
            self.uploaded,
            self.rejected,
            self.applied,
            self.duplicates,
            self.refused,
            self.deferred,
            self.expired,
        )


class SyncWorker:
    """Keeps the outbox, the inbox and the directory in step with the hub."""

    def __init__(
        self,
        settings: SyncSettings,
        store: SyncStore,
        keys: PrivateKeys,
        *,
        deps: Deps | None = None,
        key_source: KeySource | None = None,
        run: Runner = inline,
    ) -> None:
        self._settings = settings
        self._store = store
        # Every store call goes through `_db`: in `mbe-node serve` the database
        # thread (node/storage/thread.py), so no commit blocks the event loop.
        self._db = run
        self._keys = keys
        # Our keys before a rotation, while its overlap lasts (node/sync/keyring.py).
        self._previous: PrivateKeys | None = None
        self._key_source = key_source
        # The process's clock and randomness: timestamps, nonces, backoff jitter.
        self._deps = deps or Deps.system()
        self._state: EnrollmentState | None = None
        self._client: HubClient | None = None
        self._directory: Directory | None = None
        self._held_version = 0
        self._directory_due_at = 0.0
        # When to read the hub URLs from the store again (loop time).
        self._urls_due_at = 0.0
        # Newest version the hub announced on the push channel (0: none pending).
        self._announced = 0
        self._wake = asyncio.Event()
        self._mail = asyncio.Event()
        self._noted_offset: str | None = None
        self._enrolled = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._written: dict[str, str] = {}
        self.push_connected = False

    @property
    def deps(self) -> Deps:
        """The clock and randomness this worker runs on."""
        return self._deps

    def _now(self) -> int:
        return self._deps.clock.now()

    def _jitter(self) -> float:
        return uniform(self._deps.random)

    # --- lifecycle

    async def start(self) -> None:
        """Start the background tasks; returns at once (the hub may be down)."""
        if self._tasks:
            return
        await self._set_state(STATE_PUSH_CONNECTED, "false")
        self._tasks.append(asyncio.create_task(self._run(), name="mbe-sync-loop"))
        if self._settings.push:
            self._tasks.append(asyncio.create_task(self._push_loop(), name="mbe-sync-push"))
        for task in self._tasks:
            task.add_done_callback(_report_end)
        log.info("sync.started", push=self._settings.push)

    async def stop(self) -> None:
        """Cancel and await the background tasks, then close the HTTP session."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
        self._state = None
        self._enrolled.clear()
        # Written whatever the cache says: a cancelled write of "true" may have
        # reached the database without the cache learning of it.
        self.push_connected = False
        self._written.pop(STATE_PUSH_CONNECTED, None)
        await self._set_state(STATE_PUSH_CONNECTED, "false")
        log.info("sync.stopped")

    def wake(self) -> None:
        """Ask for a cycle soon (the API put something into the outbox)."""
        self._wake.set()

    # --- one cycle

    async def sync_once(self, *, drain: bool = True, upload_first: bool = True) -> SyncReport:
        """Directory (when due), outbox, inbox. Raises SyncError subclasses on failure.

        `drain=False` (a cycle for the outbox only, while the push channel
        says when mail arrives) skips asking the hub for mail;
        `upload_first=False` (a cycle for mail only) skips the outbox pass
        before the inbox (the one after it still runs): see `_run`.
        """
        await self._reload_keys()
        client, state = await self._connect()
        tally = _Tally()
        # The outbox first: sending must not depend on the directory. A hub that
        # answers but cannot take uploads now still delivers: receive, then report.
        upload_failed: HubUnreachable | None = None
        try:
            if upload_first:
                await self._upload_outbox(client, tally)
        except HubUnreachable as exc:
            if exc.hub_status is None:
                raise
            upload_failed = exc
            log.warning("sync.upload_failed", status=exc.hub_status)
        refreshed, warning = False, ""
        loop_now = asyncio.get_running_loop().time()
        announced = self._announced
        if (
            self._directory is None
            or loop_now >= self._directory_due_at
            or self._expired()
            or announced > self._held_version
        ):
            try:
                await self._refresh_directory(client, state)
                if self._announced == announced:
                    # Also when the hub served an older one than announced: asking
                    # again every cycle would not change that; the next frame will.
                    self._announced = 0
            except DirectoryRejected as exc:
                if self._directory is None:
                    raise
                # The held directory is still valid: keep using it, but say so.
                warning = str(exc)
            refreshed = True
        if drain:
            await self._drain_inbox(client, state, tally, refreshed)
        if upload_failed is not None:
            # Received what was waiting; the upload's failure is this cycle's
            # result, so the loop backs off before uploading again.
            if tally.report() != SyncReport():
                log.info("sync.cycle", **vars(tally.report()))
            raise upload_failed
        # What applying the inbox queued (receipts, confirmations) goes up now,
        # not one poll interval later: the sender sees "delivered" at once.
        # (Only then: a cycle that applied, refused or re-sealed nothing queued nothing.)
        if tally.applied or tally.refused or tally.expired:
            await self._upload_outbox(client, tally)
        if tally.deferred and not warning:
            warning = (
                f"{tally.deferred} incoming message(s) left at the hub for a later cycle"
                f" ({tally.deferred_reason})"
            )
        await self._note_last_sync()
        await self._set_state(STATE_LAST_ERROR, warning)
        await self._set_state(STATE_HUB_REACHABLE, "true")
        await self._set_state(STATE_HUB_IN_USE, client.hub_url)
        report = tally.report()
        if report != SyncReport():
            log.info("sync.cycle", **vars(report))
        return report

    async def _reload_keys(self) -> None:
        """Pick up keys rotated by `mbe-node keys rotate` while this process runs."""
        if self._key_source is None:
            return
        # KeyFiles answers from a stat of the files while they are unchanged.
        unchanged = getattr(self._key_source, "unchanged", None)
        held: KeyRing | None = unchanged(self._now()) if unchanged is not None else None
        ring = held if held is not None else await self._db(self._key_source, self._now())
        self._previous = ring.previous_at(self._now())
        if ring.current == self._keys:
            return
        self._keys = ring.current
        # Requests to the hub are signed with the new key from now on; the
        # certificate in the store changed too.
        if self._client is not None:
            await self._client.close()
        self._client, self._state = None, None
        log.info("keys.reloaded", fingerprint=ring.current.public.fingerprint())

    async def _connect(self) -> tuple[HubClient, EnrollmentState]:
        if self._client is not None and self._state is not None:
            if asyncio.get_running_loop().time() >= self._urls_due_at:
                await self._reload_hub_urls(self._client, self._state)
            return self._client, self._state
        state = await self._db(self._store.load_enrollment)
        if state is None:
            raise NotEnrolled("this node is not enrolled yet; run `mbe-node enroll` first")
        self._urls_due_at = asyncio.get_running_loop().time() + URLS_RECHECK
        client = HubClient(
            # Starts at the URL this node used last (recorded by an earlier run).
            HubUrls.of(state, self._settings.prefer_first_after),
            keys=self._keys,
            node_id=state.node_id,
            request_timeout=self._settings.request_timeout,
            deps=self._deps,
        )
        await client.start()
        self._client, self._state = client, state
        self._load_held_directory(state, await self._db(self._store.directory_bytes))
        self._enrolled.set()
        return client, state

    async def _reload_hub_urls(self, client: HubClient, held: EnrollmentState) -> None:
        """Pick up hub URLs changed by `mbe-node hub-urls` while this process runs."""
        self._urls_due_at = asyncio.get_running_loop().time() + URLS_RECHECK
        state = await self._db(self._store.load_enrollment)
        if state is None or state.node_id != held.node_id or state.hub_urls == client.urls.urls:
            return
        client.urls.replace(state.hub_urls)
        self._state = replace(held, hub_urls=state.hub_urls)

    def _load_held_directory(self, state: EnrollmentState, data: bytes | None) -> None:
        if data is None:
            return
        try:
            self._directory = Directory.verify(data, state.hub_keys, now=self._now())
            self._held_version = self._directory.version
        except ProtocolError:
            # Expired (or damaged): unusable for checking senders, but its version
            # still bounds what we accept next, if its signature holds.
            try:
                body = verify_document(data, Directory.KIND, state.hub_keys, MAX_DIRECTORY_BYTES)
            except ProtocolError:
                return
            version = body.get("version")
            if isinstance(version, int):
                self._held_version = version

    def _expired(self) -> bool:
        return self._directory is not None and self._directory.expires <= self._now()

    # --- directory

    async def _refresh_directory(self, client: HubClient, state: EnrollmentState) -> None:
        usable = self._directory is not None and not self._expired()
        etag = f'"v{self._held_version}"' if usable else None
        got = await client.directory(etag)
        self._directory_due_at = (
            asyncio.get_running_loop().time() + self._settings.directory_refresh
        )
        if got is None:
            if not usable:
                raise HubResponseError("the hub answered 'not modified' but we hold no directory")
            return
        data, new_etag = got
        try:
            directory = Directory.verify(
                data, state.hub_keys, now=self._now(), held_version=self._held_version
            )
        except ProtocolError as exc:
            log.warning("directory.refused", reason=exc.code, held_version=self._held_version)
            if self._expired():
                self._directory = None
            raise DirectoryRejected(f"refused the hub's directory ({exc.code}): {exc}") from None
        try:
            # Stored before it is held: the ETag we send next comes from what we hold,
            # so a directory held but not stored would never be fetched (and stored)
            # again, while sealing and the API read the stored one.
            await self._db(self._store.store_directory, directory.version, data, new_etag)
        except BaseException:
            self._directory_due_at = 0.0
            raise
        self._directory = directory
        if directory.version != self._held_version:
            log.info("directory.updated", version=directory.version, offices=len(directory.offices))
        self._held_version = directory.version
        await self._set_state(STATE_DIRECTORY_VERSION, str(directory.version))

    # --- outbox

    async def _upload_outbox(self, client: HubClient, tally: _Tally) -> None:
        size = self._settings.batch_size
        while True:
            batch = await self._db(self._store.outbox_pending, size)
            if not batch:
                return
            # The hub would refuse an envelope past its expiry; the domain decides
            # what replaces it (a re-sealed withdrawal, reply or status).
            now = self._now()
            done = await self._retire_expired([m for m in batch if m.expires <= now], now, tally)
            live = [m for m in batch if m.expires > now]
            if live:
                done += await self._upload_batch(client, live, tally)
            # A short batch was the last one; no progress means the store keeps
            # offering what the hub neither took nor refused: try next cycle.
            if done == 0 or len(batch) < size:
                return

    async def _retire_expired(
        self, expired: Sequence[OutgoingMessage], now: int, tally: _Tally
    ) -> int:
        """Hand expired outbox messages to the store; returns how many it retired."""
        done = 0
        for m in expired:
            if await self._db(self._store.outbox_expired, m.msg_id, now):
                log.warning("outbox.expired", msg_id=m.msg_id)
                tally.expired += 1
                done += 1
        return done

    async def _upload_batch(
        self, client: HubClient, batch: Sequence[OutgoingMessage], tally: _Tally
    ) -> int:
        ids = [m.msg_id for m in batch]
        now = self._now()
        try:
            result = await client.upload([m.envelope for m in batch])
        except (HubUnreachable, HubResponseError):
            await self._db(self._store.outbox_attempted, ids, now)
            raise
        except HubRefused as exc:
            if exc.problem in NODE_WIDE or exc.status in (401, 403):
                await self._db(self._store.outbox_attempted, ids, now)
                raise
            if len(batch) > 1:
                # One bad envelope spoils the whole request (e.g. too large):
                # find it by sending one at a time.
                done = 0
                for m in batch:
                    done += await self._upload_batch(client, [m], tally)
                return done
            if exc.problem == ProblemKind.EXPIRED:
                return await self._retire_expired(batch, now, tally)
            await self._db(self._store.outbox_rejected, ids[0], f"{exc.problem}: {exc.detail}", now)
            log.warning("outbox.rejected", msg_id=ids[0], problem=exc.problem)
            tally.rejected += 1
            return 1
        wanted = set(ids)
        accepted = [i for i in result.accepted if i in wanted]
        if accepted:
            await self._db(self._store.outbox_accepted, accepted, now)
            tally.uploaded += len(accepted)
        rejected = [r for r in result.rejected if r.id in wanted]
        answered = set(accepted)
        for r in rejected:
            problem = problem_kind(r.type)
            if problem == ProblemKind.EXPIRED:
                # By the hub's clock; ours was behind. Same as expiring here.
                expired = [m for m in batch if m.msg_id == r.id]
                if await self._retire_expired(expired, now, tally):
                    answered.add(r.id)
                continue
            detail = " ".join(r.detail.split())[:300]
            await self._db(self._store.outbox_rejected, r.id, f"{problem}: {detail}", now)
            log.warning("outbox.rejected", msg_id=r.id, problem=problem)
            tally.rejected += 1
            answered.add(r.id)
        missing = [i for i in ids if i not in answered]
        if missing:
            await self._db(self._store.outbox_attempted, missing, now)
        return len(answered)

    # --- inbox

    async def _drain_inbox(
        self, client: HubClient, state: EnrollmentState, tally: _Tally, refreshed: bool
    ) -> None:
        after = 0
        # Senders with a message left at the hub in this cycle: their later
        # messages wait with it (see the module docstring).
        held: set[str] = set()
        while True:
            page = await client.fetch_inbox(after, self._settings.batch_size)
            done: list[str] = []
            for item in page.messages:
                refreshed, finished = await self._take(client, state, item, tally, refreshed, held)
                if finished:
                    done.append(item.id)
            if done:
                # Only now: every id in `done` was applied (committed), dropped as
                # a duplicate, or recorded as refused.
                await client.ack(done)
            if not page.more or not page.messages:
                return
            after = page.next

    async def _take(
        self,
        client: HubClient,
        state: EnrollmentState,
        item: InboxMessage,
        tally: _Tally,
        refreshed: bool,
        held: set[str],
    ) -> tuple[bool, bool]:
        """Handle one fetched envelope.

        Returns (whether the directory was refreshed, whether the message is
        finished with and may be acknowledged).
        """
        now = self._now()
        try:
            env = decode_envelope(item.envelope, item.id)
            if await self._db(self._store.inbox_seen, env.msg_id):
                tally.duplicates += 1
                log.info("inbox.duplicate", msg_id=env.msg_id)
                return refreshed, True
            if env.sender in held:
                tally.deferred += 1
                log.info("inbox.held", msg_id=env.msg_id, sender=env.sender)
                return refreshed, False
            try:
                inner = self._open(env, state, now)
            except IncomingRefused as exc:
                retry = isinstance(exc, UnknownSender) or exc.reason == "bad-signature"
                if refreshed or not retry:
                    raise
                # A new office or a key rotation we have not seen yet.
                await self._refresh_directory(client, state)
                refreshed = True
                inner = self._open(env, state, now)
        except IncomingRefused as exc:
            await self._refuse(item.id, exc.sender, exc.reason, now, tally)
            return refreshed, True
        try:
            await self._db(self._store.apply_incoming, inner, now)
        except ApplyDeferred as exc:
            held.add(inner.sender)
            tally.deferred += 1
            tally.deferred_reason = tally.deferred_reason or exc.reason
            log.warning(
                "inbox.deferred", msg_id=inner.msg_id, sender=inner.sender, reason=exc.reason
            )
            return refreshed, False
        except ApplyRefused as exc:
            await self._refuse(inner.msg_id, inner.sender, exc.reason, now, tally)
            return refreshed, True
        except ProtocolError as exc:
            # E.g. the answer (a receipt) cannot be sealed to the sender's key:
            # no later cycle can do better.
            await self._refuse(
                inner.msg_id, inner.sender, f"not-applicable: {exc.code}", now, tally
            )
            return refreshed, True
        tally.applied += 1
        # The referral id (random, like the message id) lets an operator and
        # bench/referral.py follow a referral from the sender's `referral.sent`.
        log.info(
            "inbox.applied",
            msg_id=inner.msg_id,
            sender=inner.sender,
            type=inner.type,
            referral_id=getattr(inner.payload, "referral_id", None),
        )
        return refreshed, True

    async def _refuse(self, msg_id: str, sender: str, reason: str, now: int, tally: _Tally) -> None:
        await self._db(self._store.record_refused, msg_id, sender, reason, now)
        log.warning("inbox.refused", msg_id=msg_id, sender=sender, reason=reason)
        tally.refused += 1

    def _open(self, env: Envelope, state: EnrollmentState, now: int) -> InnerMessage:
        return open_incoming(
            env,
            node_id=state.node_id,
            keys=self._keys,
            hub_keys=state.hub_keys,
            directory=self._directory,
            now=now,
            previous_keys=self._previous,
        )

    # --- background tasks

    async def _note_clock(self) -> None:
        """Record how far this node's clock is from the hub's, and the hub URL in use
        (status views); each only when it changed."""
        if self._client is None:
            return
        await self._set_state(STATE_HUB_IN_USE, self._client.hub_url)
        offset = self._client.clock_offset
        if offset is not None and str(offset) != self._noted_offset:
            self._noted_offset = str(offset)
            await self._set_state(STATE_CLOCK_OFFSET, str(offset))

    async def _run(self) -> None:
        failures = 0
        while True:
            # A cycle woken only because the API queued something, while the push
            # channel is up, uploads without asking for mail: the hub says on the
            # channel when there is some (and on every connect), and a frame that
            # arrives meanwhile sets `_mail` for the next cycle. That saves the
            # hub and this node a fetch per referral sent. Cycles of the poll
            # interval, after a failure, or with push off always ask.
            drain = not (
                self._wake.is_set()
                and not self._mail.is_set()
                and self.push_connected
                and failures == 0
            )
            # Likewise a cycle woken only by mail fetches first: what the API
            # queues wakes a cycle of its own, and what applying the mail
            # queues goes up at the end of this one.
            upload_first = not (self._mail.is_set() and not self._wake.is_set() and failures == 0)
            self._wake.clear()
            self._mail.clear()
            retry_after = 0
            try:
                try:
                    await self.sync_once(drain=drain, upload_first=upload_first)
                finally:
                    await self._note_clock()
            except NotEnrolled as exc:
                failures = 0
                await self._record_failure(exc, reachable=None)
            except HubUnreachable as exc:
                failures += 1
                retry_after = exc.retry_after or 0
                # No URL answered: the administrator may have changed the list.
                self._urls_due_at = 0.0
                await self._record_failure(exc, reachable=False)
            except SyncError as exc:
                failures += 1
                await self._record_failure(exc, reachable=True)
            # The outermost boundary of the background task: a store error must be
            # recorded and retried, not end syncing silently (logged with traceback).
            except Exception as exc:
                failures += 1
                log.exception("sync.crashed", error=type(exc).__name__)
                await self._set_state(STATE_LAST_ERROR, f"internal error: {type(exc).__name__}")
            else:
                failures = 0
            if failures:
                delay = full_jitter(
                    failures,
                    base=self._settings.min_backoff,
                    cap=self._settings.max_backoff,
                    rng=self._jitter,
                )
                # The hub's Retry-After is a floor (within our own cap): asking
                # sooner would only be refused again.
                delay = max(delay, min(float(retry_after), self._settings.max_backoff))
                await _wait_any((self._mail,), delay)
            else:
                await _wait_any((self._wake, self._mail), self._settings.poll_interval)

    async def _record_failure(self, exc: SyncError, *, reachable: bool | None) -> None:
        log.warning("sync.failed", error=type(exc).__name__)
        await self._set_state(STATE_LAST_ERROR, str(exc))
        if reachable is not None:
            await self._set_state(STATE_HUB_REACHABLE, "true" if reachable else "false")

    async def _push_loop(self) -> None:
        failures = 0
        while True:
            await self._enrolled.wait()
            client = self._client
            if client is None:
                await asyncio.sleep(self._settings.poll_interval)
                continue
            try:
                ws = await client.connect_push(heartbeat=self._settings.request_timeout)
            except SyncError as exc:
                failures += 1
                log.info("push.connect_failed", error=type(exc).__name__)
            else:
                failures = 0
                await self._listen(ws, client.hub_url)
                failures = 1
            await asyncio.sleep(
                full_jitter(
                    failures,
                    base=self._settings.min_backoff,
                    cap=self._settings.max_backoff,
                    rng=self._jitter,
                )
            )

    async def _listen(self, ws: aiohttp.ClientWebSocketResponse, url: str) -> None:
        try:
            await self._set_push(True, url)
            await self._set_state(STATE_HUB_IN_USE, url)
            # Whatever arrived while we were disconnected: look now.
            self._mail.set()
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = decode_push_frame(msg.data)
                if isinstance(frame, MailFrame):
                    self._mail.set()
                elif isinstance(frame, DirectoryFrame) and frame.version > self._held_version:
                    self._announced = max(self._announced, frame.version)
                    log.info("directory.announced", version=frame.version)
                    self._mail.set()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("push.lost", error=type(exc).__name__)
        finally:
            await self._set_push(False)
            await ws.close()

    async def _set_push(self, connected: bool, url: str | None = None) -> None:
        self.push_connected = connected
        await self._set_state(STATE_PUSH_CONNECTED, "true" if connected else "false")
        if connected:
            log.info("push.connected", url=url)
        else:
            log.info("push.disconnected")

    async def _note_last_sync(self) -> None:
        """Record the end of a complete cycle, at most every LAST_SYNC_EVERY seconds.

        Every record is a commit with an fsync; with push on a cycle runs for
        each referral sent or received, and the status shows the time to the
        minute, so a busy node writes it a few times a minute, not per cycle.
        """
        now = self._now()
        held = self._written.get(STATE_LAST_SYNC, "")
        if held.isdigit() and 0 <= now - int(held) < LAST_SYNC_EVERY:
            return
        await self._set_state(STATE_LAST_SYNC, str(now))

    async def _set_state(self, key: str, value: str) -> None:
        """Record a figure of `mbe-node status`; best effort.

        These writes report on syncing, they are not part of it: one that fails
        (the database locked by a CLI command past the busy timeout, a full disk)
        is logged and tried again at the next change, and never ends the loops,
        which call this from their error paths too.
        """
        # Each write is a database transaction; most values repeat cycle after cycle.
        if self._written.get(key) == value:
            return
        self._written.pop(key, None)
        try:
            await self._db(self._store.set_sync_state, key, value)
        except Exception as exc:  # noqa: BLE001 -- a status figure: log the type, keep syncing
            log.warning("sync.state_not_recorded", key=key, error=type(exc).__name__)
            return
        self._written[key] = value


def _report_end(task: asyncio.Task[None]) -> None:
    """The loops run until stop() cancels them; any other end is a bug, said loudly."""
    if task.cancelled():
        return
    exc = task.exception()
    log.error("sync.task_ended", task=task.get_name(), error=type(exc).__name__ if exc else None)


async def _wait_any(events: Sequence[asyncio.Event], timeout: float) -> None:
    """Sleep up to `timeout` seconds, or until one of `events` is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


SYNC_WORKER = web.AppKey("mbe_sync_worker", SyncWorker)


async def sync_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: start `app[SYNC_WORKER]` with the app, stop it on shutdown."""
    worker = app[SYNC_WORKER]
    await worker.start()
    yield
    await worker.stop()
