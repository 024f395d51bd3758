"""The `mbe-node` command line.

Every error a user can cause ends as one line on stderr and exit status 1
(2 for usage errors, from argparse); never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from aiohttp import web

from node.api import keys as api_keys
from node.api.app import Background, create_app
from node.api.export_page import render as render_export
from node.audit import add_commands as add_audit_commands
from node.backup import add_commands as add_backup_commands
from node.clock import Deps
from node.config import NodeSettings, check_office_name, load_keys, load_settings
from node.datadir import init_data_dir
from node.errors import ConfigError, EnrollFailed, NodeError
from node.jobs.audit_head import audit_head_ctx
from node.jobs.housekeeping import referral_housekeeping_ctx
from node.jobs.retention import retention_ctx
from node.jobs.stats_scheduler import stats_scheduler_ctx
from node.rotation import KeyFiles
from node.rotation import add_commands as add_keys_commands
from node.stats.errors import HubRefusedReport
from node.stats.periods import parse_period
from node.stats.service import QUEUED, UNCHANGED, StatsService, hub_connector
from node.storage.context import iso
from node.storage.export import audited_export
from node.storage.health import SyncHealth
from node.storage.retention import DUE_WITHIN_DAYS
from node.storage.stats_ledger import REJECTED, StatsLedger
from node.storage.store import NodeStore
from node.sync.enroll import change_hub_urls, enroll
from node.sync.errors import NotEnrolled, SyncError
from node.sync.hub_urls import BadHubUrl
from node.sync.ports import STATE_API_LISTENING
from node.sync.worker import SYNC_WORKER, SyncWorker
from support import logsetup
from support.files import write_private_file
from support.memory import release_free_memory

Command = Callable[[argparse.Namespace, TextIO], int]


def sync_background(settings: NodeSettings) -> Sequence[Background]:
    """The cleanup_ctx functions that run the sync worker, stats scheduler, referral
    expiry, retention erasure and the audit chain head (node/jobs/) next to the API.

    They run after the store is open (the store's own cleanup_ctx comes first).
    """
    return (
        _sync_worker_ctx,
        stats_scheduler_ctx,
        referral_housekeeping_ctx,
        retention_ctx,
        audit_head_ctx,
    )


async def _sync_worker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[api_keys.SETTINGS]
    node_store = app[api_keys.STORE]
    store = node_store.sync
    # KeyFiles: keys rotated while serve runs are picked up (node/rotation.py).
    worker = SyncWorker(
        settings.sync,
        store,
        app[api_keys.KEYS],
        # The app's clock and randomness: the whole process runs on one clock.
        deps=app[api_keys.DEPS],
        key_source=KeyFiles(settings, store),
        run=node_store.run,
    )
    app[SYNC_WORKER] = worker
    app[api_keys.OUTBOX_LISTENERS].append(worker.wake)
    await worker.start()
    yield
    await worker.stop()


@contextmanager
def _open_store(data_dir: Path) -> Iterator[tuple[NodeSettings, NodeStore]]:
    """Settings and the store of the node in `data_dir`; the store closed after."""
    settings = load_settings(data_dir)
    keys = load_keys(settings.key_path)
    if not settings.db_path.exists():
        raise ConfigError(f"{settings.db_path} not found (run mbe-node init)")
    store = NodeStore.open(
        settings.db_path,
        keys,
        Deps.system(),
        message_ttl=settings.sync.message_ttl,
        answer_within_days=settings.referrals.answer_within_days,
    )
    try:
        yield settings, store
    finally:
        store.close()


def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    data_dir = Path(args.dir)
    keys = init_data_dir(data_dir, check_office_name(args.name or data_dir.name))
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        # An existing directory is left as the administrator made it, but said so.
        sys.stderr.write(
            f"mbe-node: warning: {data_dir} has mode {mode:04o}; run chmod 700 {data_dir}\n"
        )
    out.write(f"Initialised {data_dir}\n")
    out.write(f"Key fingerprint: {keys.public.fingerprint()}\n")
    out.write(f"Next: mbe-node enroll --dir {data_dir} --hub URL --code CODE\n")
    return 0


def cmd_enroll(args: argparse.Namespace, out: TextIO) -> int:
    with _open_store(Path(args.dir)) as (settings, store):
        try:
            state = asyncio.run(
                enroll(
                    settings.sync,
                    store.sync,
                    store.ctx.keys,
                    args.hub,
                    args.code,
                    deps=store.ctx.deps,
                )
            )
        except SyncError as exc:
            raise EnrollFailed(str(exc)) from None
    out.write(f"Enrolled as {state.node_id} with {', '.join(state.hub_urls)}\n")
    out.write(f"Hub fingerprint: {state.hub_keys.fingerprint()}\n")
    out.write(f"Next: mbe-node serve --dir {args.dir}\n")
    return 0


def cmd_hub_urls(args: argparse.Namespace, out: TextIO) -> int:
    """Show the hub URLs, or replace them (checked first; nothing changes on an error)."""
    with _open_store(Path(args.dir)) as (settings, store):
        if args.urls:
            try:
                done = asyncio.run(
                    change_hub_urls(
                        settings.sync, store.sync, store.ctx.keys, args.urls, deps=store.ctx.deps
                    )
                )
            except BadHubUrl as exc:
                raise BadHubUrl(f"{exc}; the stored hub URLs are unchanged") from None
            for url, why in done.unreachable.items():
                sys.stderr.write(f"mbe-node: warning: {url} does not answer now ({why})\n")
        health = store.health(settings.retention.years)
    if not health.enrolled:
        raise NotEnrolled("this node is not enrolled yet; run `mbe-node enroll` first")
    out.write(f"Hub URLs of {health.node_id}, in order of preference:\n")
    for line in hub_url_lines(health):
        out.write(f"  {line}\n")
    if args.urls:
        out.write(
            "A running mbe-node serve picks them up by itself within a few minutes; no restart"
            " is needed.\n"
        )
    return 0


def hub_url_lines(health: SyncHealth) -> list[str]:
    """One line per hub URL: its place, and which one is preferred and in use."""
    lines = []
    for n, url in enumerate(health.hub_urls, 1):
        notes = ["preferred"] if n == 1 else []
        if url == health.hub_url and len(health.hub_urls) > 1:
            notes.append("in use")
        lines.append(f"{n}. {url}" + (f" ({', '.join(notes)})" if notes else ""))
    return lines


def cmd_token_create(args: argparse.Namespace, out: TextIO) -> int:
    with _open_store(Path(args.dir)) as (_settings, store):
        token = store.access.create_token(args.name)
    out.write(f"{token}\n")
    sys.stderr.write(f"Token for app {args.name}; it is shown only this once.\n")
    return 0


def cmd_token_list(args: argparse.Namespace, out: TextIO) -> int:
    with _open_store(Path(args.dir)) as (_settings, store):
        tokens = store.access.tokens()
    if not tokens:
        out.write("no app tokens (create one with mbe-node token create)\n")
        return 0
    rows = [("APP", "ID", "CREATED", "LAST USED", "STATE")]
    for t in tokens:
        state = f"revoked {_iso(t.revoked)}" if t.revoked is not None else "active"
        last = _iso(t.last_used) if t.last_used is not None else "never"
        rows.append((t.name, t.token_id, _iso(t.created), last, state))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    return 0


def cmd_token_revoke(args: argparse.Namespace, out: TextIO) -> int:
    with _open_store(Path(args.dir)) as (_settings, store):
        info = store.access.revoke_token(args.token)
    # A running `mbe-node serve` checks the database on every request.
    out.write(f"Revoked the token of app {info.name} ({info.token_id}); refused from now on\n")
    return 0


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:

    settings = load_settings(Path(args.dir))
    load_keys(settings.key_path)  # fail now, with one line, rather than at start-up
    # --host and --port are checked like [api] (an off-loopback host needs allow_network).
    api = dataclasses.replace(
        settings.api,
        host=args.host or settings.api.host,
        port=settings.api.port if args.port is None else args.port,
    )
    # Bind before anything starts: a busy port fails here, before the node
    # announces itself or connects to the hub.
    try:
        sock = socket.create_server((api.host, api.port))
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {api.host}:{api.port}: {reason}") from None
    url = f"http://{api.host}:{sock.getsockname()[1]}"
    logsetup.configure_logging(settings.log_level)
    app = create_app(settings, background=[*sync_background(settings), listening_ctx(url)])
    out.write(f"mbe-node API on {url}/api/v1 (Ctrl-C to stop)\n")
    out.flush()
    web.run_app(app, sock=sock, print=None, handle_signals=True)
    return 0


def listening_ctx(url: str) -> Background:
    """Record where this `serve` listens (and its pid) for `mbe-node status`, and
    clear it on a clean stop."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[api_keys.STORE]
        value = json.dumps({"url": url, "pid": os.getpid()})
        await store.run(store.sync.set_sync_state, STATE_API_LISTENING, value)
        release_free_memory()  # what start-up freed (support/memory.py)
        yield
        await store.run(store.sync.set_sync_state, STATE_API_LISTENING, "")

    return ctx


def _listening(health: SyncHealth) -> str | None:
    """The URL a running `serve` listens on, or None (not running, or killed)."""
    raw = dict(health.sync_state).get(STATE_API_LISTENING)
    if not raw:
        return None
    try:
        value = json.loads(raw)
        url, pid = str(value["url"]), int(value["pid"])
        os.kill(pid, 0)
    except (ValueError, TypeError, KeyError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # the process exists (another user's)
    return url


def _yes_no(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    return "unknown" if value is None else (yes if value else no)


def _iso(ts: int | None) -> str:
    return iso(ts) or "-"


def _clock(offset: int | None) -> str:
    if offset is None:
        return "not measured yet"
    if offset == 0:
        return "agrees with the hub"
    side = "ahead of" if offset > 0 else "behind"
    warn = " (the hub refuses beyond 300 s: set up NTP)" if abs(offset) > 60 else ""
    return f"{abs(offset)} s {side} the hub{warn}"


def _audit_line(health: SyncHealth) -> str:
    if health.audit_broken_seq is not None:
        return f"BROKEN at entry {health.audit_broken_seq} (run mbe-node audit verify)"
    confirmed = (
        f"head confirmed by the hub {_iso(health.audit_hub_confirmed)}"
        if health.audit_hub_confirmed is not None
        else "no head confirmed by the hub yet"
    )
    return f"intact ({health.audit_entries} entries), {confirmed}"


def status_lines(settings: NodeSettings, health: SyncHealth) -> list[tuple[str, str]]:
    """The English table of `mbe-node status`; the figures are the status page's."""
    enrolled = (
        f"yes, as {health.node_id} since {_iso(health.enrolled_at)}"
        if health.enrolled
        else "no (run mbe-node enroll)"
    )
    outbox = f"{health.outbox_depth} waiting"
    if health.oldest_unsent is not None:
        outbox += f", oldest from {_iso(health.oldest_unsent)}"
    if health.outbox_rejected:
        outbox += f", {health.outbox_rejected} refused by the hub"
    directory = f"version {health.directory_version or '-'}"
    if health.directory_expires is not None:
        until = "expired" if health.directory_expired else "valid until"
        directory += f", {until} {_iso(health.directory_expires)}"
    stats = ", ".join(f"{s.period} rev {s.revision} {s.state}" for s in health.stats)
    listening = _listening(health)
    configured = f"http://{settings.api.host}:{settings.api.port}"
    api = (
        f"{listening}/api/v1 (mbe-node serve is running)"
        if listening
        else f"{configured}/api/v1 (configured; mbe-node serve is not running)"
    )
    exposure: list[tuple[str, str]] = []
    if settings.api.allow_network and settings.api.network_exposed:
        exposure.append(
            (
                "API exposure",
                "reachable from the network (api.allow_network = true); plain HTTP,"
                " no TLS: put a TLS reverse proxy in front and firewall the port",
            )
        )
    hubs: list[tuple[str, str]] = []
    if len(health.hub_urls) > 1:
        hubs.append(("Hub URLs", "; ".join(hub_url_lines(health))))
    return [
        ("Node", settings.name),
        ("Enrolled", enrolled),
        ("Hub", health.hub_url or "-"),
        *hubs,
        ("Hub reachable", _yes_no(health.hub_reachable)),
        ("Push", _yes_no(health.push_live, "connected", "disconnected")),
        ("Clock", _clock(health.clock_offset)),
        ("Last sync", _iso(health.last_sync) if health.last_sync is not None else "never"),
        ("Last error", health.last_error or "-"),
        ("Outbox", outbox),
        ("Withdrawals", f"{health.withdrawals_pending} not yet sealed (retried)"),
        (
            "Expired undelivered",
            f"{health.messages_resent} sent again, {health.delivery_failed} undeliverable",
        ),
        (
            "Erasures",
            f"{health.erasures_waiting} notice(s) awaiting a receipt"
            f" ({health.erasures_overdue} overdue), {health.erasures_flagged} flagged case(s)",
        ),
        ("Inbox", f"{health.inbox_awaiting} referral(s) awaiting a decision"),
        ("Refused messages", str(health.refused_messages)),
        ("Directory", directory),
        ("Statistics", stats or "none submitted"),
        (
            "Retention",
            f"{health.retention_due} case(s) erased within {DUE_WITHIN_DAYS} days,"
            f" {health.retention_held} held",
        ),
        ("Audit log", _audit_line(health)),
        ("Warnings", ", ".join(health.warnings()) or "none"),
        ("API", api),
        *exposure,
        ("Status page", f"{api}/status"),
    ]


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    with _open_store(Path(args.dir)) as (settings, store):
        health = store.health(settings.retention.years)
    rows = status_lines(settings, health)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.write(f"{key:<{width}}  {value}\n")
    return 0


def _stats_service(settings: NodeSettings, store: NodeStore) -> StatsService:
    return StatsService(
        store.ctx,
        settings.stats,
        connect=hub_connector(store.ctx.keys, settings.sync.request_timeout, store.ctx.deps),
        load_enrollment=store.network.load_enrollment,
    )


def cmd_stats_preview(args: argparse.Namespace, out: TextIO) -> int:
    period = parse_period(args.period)  # a typo fails before anything is opened
    with _open_store(Path(args.dir)) as (settings, store):
        preview = asyncio.run(_stats_service(settings, store).preview(period.id))
    if args.json:
        out.write(json.dumps(preview, ensure_ascii=False, indent=2) + "\n")
        return 0
    last = preview["last_submission"]
    state = "ended" if preview["complete"] else "not ended yet, counts so far"
    out.write(f"Period {preview['period']} ({state}), {preview['cell_count']} non-zero cells\n")
    if last is not None:
        changed = "changed since" if preview["changed_since_submission"] else "same as"
        out.write(f"Last report: revision {last['revision']} ({last['state']}), {changed} now\n")
    for cell in preview["cells"]:
        dims = ";".join(f"{k}={v}" for k, v in sorted(cell["dims"].items())) or "-"
        out.write(f"{cell['measure']:<32} {dims:<48} {cell['count']:>7}\n")
    return 0


def cmd_stats_submit(args: argparse.Namespace, out: TextIO) -> int:
    period = parse_period(args.period)
    with _open_store(Path(args.dir)) as (settings, store):
        outcome = asyncio.run(_stats_service(settings, store).submit(period.id))
    what = f"{outcome.period} revision {outcome.revision} ({outcome.cell_count} cells)"
    if outcome.state == UNCHANGED:
        out.write(f"{what}: unchanged, already submitted; nothing sent\n")
    elif outcome.state == QUEUED:
        out.write(f"{what}: queued, the hub is not reachable; mbe-node serve retries it\n")
    elif outcome.state == REJECTED:
        raise HubRefusedReport(f"{what}: {outcome.detail or 'refused by the hub'}")
    else:
        out.write(f"{what}: submitted\n")
    return 0


def cmd_stats_dismiss(args: argparse.Namespace, out: TextIO) -> int:
    """Dismiss the warning of a period whose newest report the hub refused."""
    period = parse_period(args.period)
    with _open_store(Path(args.dir)) as (_settings, store):
        sub = StatsLedger(store.ctx).dismiss(period.id)
    out.write(
        f"{sub.period} revision {sub.revision} ({sub.last_error or 'refused'}): warning dismissed;"
        " a corrected revision is sent when the period's counts change, or with"
        " `mbe-node stats submit`\n"
    )
    return 0


# The app name of the audit rows written by the command line.
CLI_APP = "mbe-node-cli"


def cmd_client_export(args: argparse.Namespace, out: TextIO) -> int:
    """The client's access export of a case (docs/node.md, "Access export"); audited."""
    with _open_store(Path(args.dir)) as (settings, store):
        export = audited_export(
            store.ctx,
            store.access,
            args.case_id,
            app=CLI_APP,
            retention_years=settings.retention.years,
            office_name=settings.name,
        )
    if args.html:
        text = render_export(export, settings.name)
    else:
        text = json.dumps(export, ensure_ascii=False, indent=2) + "\n"
    if args.output is None:
        out.write(text)
        return 0
    # The file holds the client's personal data: private to the user (0600).
    write_private_file(Path(args.output), text.encode("utf-8"))
    sys.stderr.write(f"Wrote the export of case {args.case_id} to {args.output}\n")
    return 0


def _port(text: str) -> int:
    """argparse type: a TCP port, so 99999 is a usage error rather than a traceback."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not between 0 and 65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mbe-node", description="mbe-sync office node")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="create a data directory: config, keys, database")
    p.add_argument("--dir", required=True, help="data directory to create")
    p.add_argument("--name", help="office name for node.toml (default: directory name)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("enroll", help="enroll with the regional hub using a one-time code")
    p.add_argument("--dir", required=True)
    p.add_argument(
        "--hub",
        required=True,
        action="append",
        metavar="URL",
        help="the hub's public URL, e.g. https://hub.example; repeat it for each further"
        " URL of the same hub, in order of preference",
    )
    p.add_argument("--code", required=True, help="the one-time code from the hub operator")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser(
        "hub-urls", help="show the hub's URLs, or replace them (in order of preference)"
    )
    p.add_argument("--dir", required=True)
    p.add_argument("urls", nargs="*", metavar="URL", help="the hub's URLs, the preferred one first")
    p.set_defaults(func=cmd_hub_urls)

    p = sub.add_parser("serve", help="run the local API (and the sync worker)")
    p.add_argument("--dir", required=True)
    p.add_argument("--host", help="listen address (default: [api].host, 127.0.0.1)")
    p.add_argument("--port", type=_port, help="listen port (default: [api].port)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("token", help="manage app tokens for the local API")
    token_sub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    t = token_sub.add_parser("create", help="create a token for an app; printed once")
    t.add_argument("--dir", required=True)
    t.add_argument("--name", required=True, help="app name, e.g. beratungs-app")
    t.set_defaults(func=cmd_token_create)
    t = token_sub.add_parser("list", help="list app tokens (name, id, created, last used)")
    t.add_argument("--dir", required=True)
    t.set_defaults(func=cmd_token_list)
    t = token_sub.add_parser("revoke", help="revoke an app's token; refused at once")
    t.add_argument("--dir", required=True)
    t.add_argument("token", metavar="NAME_OR_ID", help="the app name or the id token list shows")
    t.set_defaults(func=cmd_token_revoke)

    p = sub.add_parser("status", help="enrollment, sync health, outbox and inbox")
    p.add_argument("--dir", required=True)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("stats", help="the office's statistics for the hub (dataset mbe-core)")
    stats_sub = p.add_subparsers(dest="stats_command", metavar="ACTION", required=True)
    t = stats_sub.add_parser("preview", help="show the counts the office would send")
    t.add_argument("--dir", required=True)
    t.add_argument("--period", required=True, help="2026-11, 2026-Q4 or 2026")
    t.add_argument("--json", action="store_true", help="print the preview as JSON")
    t.set_defaults(func=cmd_stats_preview)
    t = stats_sub.add_parser("submit", help="seal an ended period's report and send it now")
    t.add_argument("--dir", required=True)
    t.add_argument("--period", required=True, help="2026-11, 2026-Q4 or 2026")
    t.set_defaults(func=cmd_stats_submit)
    t = stats_sub.add_parser(
        "dismiss", help="clear the warning of a report the hub refused (after reading why)"
    )
    t.add_argument("--dir", required=True)
    t.add_argument("--period", required=True, help="2026-11, 2026-Q4 or 2026")
    t.set_defaults(func=cmd_stats_dismiss)
    p = sub.add_parser("client", help="the client's rights: access export of a case")
    client_sub = p.add_subparsers(dest="client_command", metavar="ACTION", required=True)
    t = client_sub.add_parser("export", help="everything stored about a case's client (audited)")
    t.add_argument("--dir", required=True)
    t.add_argument("--html", action="store_true", help="a printable German document, not JSON")
    t.add_argument("--output", metavar="FILE", help="write to FILE (mode 0600), not to stdout")
    t.add_argument("case_id", metavar="CASE_ID")
    t.set_defaults(func=cmd_client_export)
    add_backup_commands(sub)
    add_audit_commands(sub)
    add_keys_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    func: Command = args.func
    # Everything the node creates holds or protects client data (node.db and its
    # -wal/-shm, node.toml, backups): private to the service user, whatever the
    # shell's umask. `sudo -u mbe-node mbe-node init` runs outside systemd's UMask=.
    umask = os.umask(0o077)
    try:
        return func(args, sys.stdout)
    except NodeError as exc:
        sys.stderr.write(f"mbe-node: error: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"mbe-node: error: {exc.strerror or exc}\n")
        return 1
    except sqlite3.Error as exc:
        # Locked by another process, or node.db is not a database (damaged).
        detail = " ".join(str(exc).split())
        sys.stderr.write(
            f"mbe-node: error: the node database cannot be used ({detail}); if another"
            " mbe-node command is running, try again; if the file is damaged, restore"
            " a backup (docs/operations.md)\n"
        )
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        os.umask(umask)  # matters only to callers in the same process (tests)


if __name__ == "__main__":
    sys.exit(main())
