"""`mbe-node keys rotate`: new keys for the node, signed with the old ones.

Files in the data directory, all mode 0600:

* `node.key`: the current keys. Replaced atomically (write a temporary file,
  fsync, rename), so it always holds one complete key.
* `node.key.next`: the new keys, written *before* the hub is asked. If the
  answer is lost (crash, timeout), the hub may already list these keys; losing
  them would cut the office off. Running `keys rotate` again reuses them and
  the hub answers a retry of the same rotation with the same certificate.
* `node.key.previous`: the old keys, kept until the overlap the hub granted
  ends (sync state `keys_previous_until`): mail sealed to the old key by an
  office that had not yet learned the new one still opens. Deleted after it,
  by the running service's sync cycle or the next `keys rotate`.

A running `mbe-node serve` reads these files once per sync cycle
(`KeyFiles`): it talks to the hub and opens mail with the new keys without a
restart. The referrals it seals keep the old signature until it restarts;
receivers accept that during the overlap, so the administrator restarts the
service within it (the command says so).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import structlog

from node.clock import Deps
from node.config import NodeSettings, load_keys, load_settings
from node.errors import ConfigError, NodeError
from node.storage.store import NodeStore
from node.sync.client import HubClient
from node.sync.errors import HubRefused, HubUnreachable, SyncError
from node.sync.hub_urls import HubUrls
from node.sync.keyring import KeyRing
from node.sync.ports import SyncStore
from protocol.documents import KeyRotation
from protocol.keys import PrivateKeys
from support.files import fsync_dir, write_private_file

log = structlog.get_logger()

STATE_PREVIOUS_UNTIL = "keys_previous_until"  # unix time; "" when no overlap runs


class KeyRotationFailed(NodeError):
    """The rotation did not happen (or is unfinished); the message says what to do."""

    kind = "key-rotation-failed"
    title = "Key rotation failed"


@dataclass(frozen=True)
class Rotated:
    """What `keys rotate` reports."""

    node_id: str
    hub_url: str
    fingerprint: str
    previous_until: int
    resumed: bool


def write_key_file(path: Path, keys: PrivateKeys) -> None:
    """Write `path` atomically with mode 0600 from the start; fsync file and directory."""
    write_private_file(path, keys.to_bytes())


def previous_until(store: SyncStore) -> int:
    raw = store.get_sync_state(STATE_PREVIOUS_UNTIL) or ""
    return int(raw) if raw.isdigit() else 0


def prune_previous(settings: NodeSettings, store: SyncStore, now: int) -> bool:
    """Delete node.key.previous once its overlap has ended; True if it was deleted."""
    until = previous_until(store)
    if until == 0 or now < until or not settings.previous_key_path.exists():
        return False
    settings.previous_key_path.unlink()
    store.set_sync_state(STATE_PREVIOUS_UNTIL, "")
    log.info("keys.previous_deleted")
    return True


class KeyFiles:
    """The `KeySource` of a running node: the key files, re-read each sync cycle
    in which they changed.

    With push on a cycle runs for every referral sent or received, so the
    files' identity (inode, size, modification time) is compared first: while
    it is unchanged, and no previous key's overlap has ended, the keys read
    last time are returned without reading the files or the database. A
    rotation writes new files (a new inode), which reads them again.
    """

    def __init__(self, settings: NodeSettings, store: SyncStore) -> None:
        self._settings = settings
        self._store = store
        self._last: KeyRing | None = None
        self._identity: tuple[object, ...] | None = None

    def _files(self) -> tuple[object, ...]:
        out: list[object] = []
        for path in (self._settings.key_path, self._settings.previous_key_path):
            try:
                st = path.stat()
            except FileNotFoundError:
                out.append(None)
            else:
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _current_identity(self) -> tuple[object, ...] | None:
        try:
            return self._files()
        except OSError:
            return None

    def _held(self, identity: tuple[object, ...] | None, now: int) -> KeyRing | None:
        last = self._last
        if (
            last is not None
            and identity is not None
            and identity == self._identity
            and (last.previous is None or now < last.previous_until)
        ):
            return last
        return None

    def unchanged(self, now: int) -> KeyRing | None:
        """The keys read last time if the files are still the same, else None.

        Only `stat` calls, no database: cheap enough for the event loop, so a
        sync cycle hops to the database thread only after a rotation.
        """
        return self._held(self._current_identity(), now)

    def __call__(self, now: int) -> KeyRing:
        identity = self._current_identity()
        held = self._held(identity, now)
        if held is not None:
            return held
        try:
            prune_previous(self._settings, self._store, now)
            previous = None
            if self._settings.previous_key_path.exists():
                previous = load_keys(self._settings.previous_key_path)
            ring = KeyRing(
                current=load_keys(self._settings.key_path),
                previous=previous,
                previous_until=previous_until(self._store) if previous else 0,
            )
        except (ConfigError, OSError) as exc:
            if self._last is None:
                raise
            # Keep the keys that worked; `mbe-node status` shows the sync error otherwise.
            log.warning("keys.reload_failed", error=type(exc).__name__)
            return self._last
        self._last = ring
        # Taken before reading: a file replaced meanwhile is read again next time.
        self._identity = identity
        return ring


async def rotate_keys(
    settings: NodeSettings,
    store: SyncStore,
    *,
    deps: Deps | None = None,
    generate: Callable[[], PrivateKeys] = PrivateKeys.generate,
) -> Rotated:
    """Rotate this node's keys with its hub; raise KeyRotationFailed with one line."""
    deps = deps or Deps.system()
    now = deps.clock.now()
    state = store.load_enrollment()
    if state is None:
        raise KeyRotationFailed("this node is not enrolled yet; run `mbe-node enroll` first")
    current = load_keys(settings.key_path)
    prune_previous(settings, store, now)
    pending_path = settings.pending_key_path
    pending = load_keys(pending_path) if pending_path.exists() else None
    until = previous_until(store)
    if pending is None and settings.previous_key_path.exists() and now < until:
        raise KeyRotationFailed(
            f"the previous rotation's overlap runs until {_utc(until)}; rotate again after that"
        )
    new = pending or generate()
    async with HubClient(
        HubUrls.of(state),
        keys=current,
        node_id=state.node_id,
        request_timeout=settings.sync.request_timeout,
        deps=deps,
    ) as client:
        try:
            await client.info()  # reachable? Otherwise fail before writing anything.
        except SyncError as exc:
            raise KeyRotationFailed(f"{exc}; nothing was changed") from None
        if pending is None:
            write_key_file(pending_path, new)
        doc = KeyRotation(node_id=state.node_id, new_keys=new.public, created=now)
        try:
            result = await client.rotate_keys(
                doc.sign(current), new.public, state.hub_keys, now=now
            )
        except HubRefused as exc:
            if pending is None:
                # The hub refused in its transaction: these keys were never valid.
                pending_path.unlink(missing_ok=True)
                raise KeyRotationFailed(
                    f"the hub refused the key rotation ({exc.problem}): {exc.detail}; "
                    "nothing was changed"
                ) from None
            raise KeyRotationFailed(
                f"the hub refused to finish the unfinished rotation ({exc.problem}): "
                f"{exc.detail}; {pending_path} is kept, ask the hub operator"
            ) from None
        except (HubUnreachable, SyncError) as exc:
            raise KeyRotationFailed(
                f"{exc}; the hub may have the new keys already: run `mbe-node keys rotate` "
                f"again to finish (they wait in {pending_path})"
            ) from None
        answered = client.hub_url
    # The hub lists the new keys now. Old keys to .previous first, so that every
    # moment has both on disk; then the atomic switch of node.key.
    store.set_sync_state(STATE_PREVIOUS_UNTIL, str(result.previous_until))
    # Read again: the hub URLs may have been changed (`hub-urls`) while the hub answered.
    held = store.load_enrollment() or state
    store.save_enrollment(replace(held, certificate=result.certificate_bytes))
    write_key_file(settings.previous_key_path, current)
    os.replace(pending_path, settings.key_path)
    fsync_dir(settings.data_dir)
    log.info(
        "keys.rotated",
        node_id=state.node_id,
        until=result.previous_until,
        directory_version=result.directory_version,
    )
    return Rotated(
        node_id=state.node_id,
        hub_url=answered,
        fingerprint=new.public.fingerprint(),
        previous_until=result.previous_until,
        resumed=pending is not None,
    )


def _utc(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def describe(done: Rotated) -> list[str]:
    """The lines `mbe-node keys rotate` prints."""
    until = _utc(done.previous_until)
    return [
        f"{'Finished the unfinished' if done.resumed else 'Rotated the'} keys of "
        f"{done.node_id} with {done.hub_url}",
        f"New key fingerprint: {done.fingerprint}",
        f"The previous keys stay valid until {until} (node.key.previous, deleted then).",
        "A running mbe-node serve uses the new keys for the hub and incoming mail from its "
        "next sync; restart it (systemctl restart mbe-node) before "
        f"{until} so that the referrals it sends are signed with the new key too.",
    ]


def cmd_keys_rotate(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings(Path(args.dir))
    keys = load_keys(settings.key_path)
    if not settings.db_path.exists():
        raise ConfigError(f"{settings.db_path} not found (run mbe-node init)")
    deps = Deps.system()
    store = NodeStore.open(settings.db_path, keys, deps, message_ttl=settings.sync.message_ttl)
    try:
        done = asyncio.run(rotate_keys(settings, store.sync, deps=deps))
    finally:
        store.close()
    for line in describe(done):
        out.write(line + "\n")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keys rotate` to the `mbe-node` parser."""
    p = sub.add_parser("keys", help="the node's own keys")
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    t = keys_sub.add_parser(
        "rotate", help="new keys, signed with the old ones and registered with the hub"
    )
    t.add_argument("--dir", required=True)
    t.set_defaults(func=cmd_keys_rotate)
