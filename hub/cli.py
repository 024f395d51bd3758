"""The `mbe-hub` command line: init, serve, site add/list/revoke, token create/list/revoke,
backup/restore, stats status/publish, db migrate.

Every error a user can cause ends as one line on stderr and exit code 1 (2 for
usage errors, from argparse); no traceback reaches the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, cast

import structlog
from aiohttp import web

from hub.app import SERVER_LIMITS, create_app
from hub.backup import add_commands as add_backup_commands
from hub.db_copy import migrate as migrate_db
from hub.db_copy import summary as migrate_summary
from hub.errors import DataDirError, HubError
from hub.keyfile import read_keys, write_keys
from hub.maintenance import refresh_directory
from hub.settings import CONFIG_FILE, HubSettings, default_config, load_settings
from hub.sites import add_site, new_code, revoke_site
from hub.stats.commands import add_commands as add_stats_commands
from hub.stats.routes import add_stats
from hub.storage.db import open_db
from hub.storage.engine import ENGINE_ERRORS, Db
from hub.storage.sites import list_sites
from hub.tokens import (
    create_token,
    list_tokens,
    require_known_org,
    revoke_token,
    token_hash,
    token_id,
)
from protocol.keys import PrivateKeys
from support import logsetup

log = structlog.get_logger()


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def cmd_init(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir
    if (data_dir / CONFIG_FILE).exists():
        raise DataDirError(f"{data_dir} is already a hub data directory")
    text = default_config(args.region, args.url)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = PrivateKeys.generate()
    write_keys(data_dir / "hub.key", keys)
    (data_dir / CONFIG_FILE).write_text(text, encoding="utf-8")
    settings = load_settings(data_dir)
    db = open_db(settings.db_path, settings.database.postgres_url)
    try:
        refresh_directory(db, keys, settings, int(time.time()))
    finally:
        db.close()
    print(f"hub initialised in {data_dir}")
    print(f"hub fingerprint: {keys.public.fingerprint()}")
    return 0


def _open(args: argparse.Namespace) -> tuple[HubSettings, PrivateKeys]:
    settings = load_settings(args.dir)
    return settings, read_keys(settings.key_path)


@contextmanager
def _hub_db(
    args: argparse.Namespace,
) -> Iterator[tuple[HubSettings, PrivateKeys, Db]]:
    """Settings, keys and the database of the hub in `--dir`; the database closed after."""
    settings, keys = _open(args)
    db = open_db(settings.db_path, settings.database.postgres_url)
    try:
        yield settings, keys, db
    finally:
        db.close()


def cmd_site_add(args: argparse.Namespace) -> int:
    with _hub_db(args) as (settings, keys, db):
        new = add_site(
            db,
            keys,
            settings,
            name=args.name,
            org=args.org,
            services=args.service or [],
            languages=args.language or [],
            area=args.area or "",
            now=int(time.time()),
            secret=secrets.randbits(60),
            duplicate_name=args.duplicate_name,
        )
    print(f"node id:          {new.node_id}")
    print(f"enrollment code:  {new.code}")
    print(f"code expires:     {_when(new.expires)} (works once)")
    print(f"hub fingerprint:  {keys.public.fingerprint()}")
    print(f"enroll with:      mbe-node enroll --dir DIR --hub {settings.public_url} --code CODE")
    return 0


def cmd_site_code(args: argparse.Namespace) -> int:
    with _hub_db(args) as (settings, keys, db):
        new = new_code(
            db, keys, settings, args.node_id, now=int(time.time()), secret=secrets.randbits(60)
        )
    print(f"node id:          {new.node_id}")
    print(f"enrollment code:  {new.code}")
    print(f"code expires:     {_when(new.expires)} (works once)")
    if new.replaced:
        print(f"earlier codes:    {new.replaced} unused code(s) no longer work")
    print(f"hub fingerprint:  {keys.public.fingerprint()}")
    print(f"enroll with:      mbe-node enroll --dir DIR --hub {settings.public_url} --code CODE")
    return 0


def cmd_site_list(args: argparse.Namespace) -> int:
    with _hub_db(args) as (_settings, _, db):
        sites = list_sites(db)
    if not sites:
        print("no sites yet (add one with `mbe-hub site add`)")
        return 0
    print(f"{'NODE ID':<30} {'STATUS':<8} {'ORG':<20} NAME")
    for s in sites:
        print(f"{s.node_id:<30} {s.status:<8} {s.org[:20]:<20} {s.name}")
    return 0


def cmd_site_revoke(args: argparse.Namespace) -> int:
    with _hub_db(args) as (settings, keys, db):
        version = revoke_site(db, keys, settings, args.node_id, int(time.time()))
    print(f"site {args.node_id} revoked; directory version {version} published")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    with _hub_db(args) as (_settings, _, db):
        if args.org is not None:
            require_known_org(db, args.org)
        token = create_token(
            db, args.role, args.org, int(time.time()), secrets.token_bytes(32), label=args.label
        )
    print(token)
    print("store this token now; the hub keeps only its hash", file=sys.stderr)
    print(f"token id (for `token list|revoke`): {token_id(token_hash(token))}", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with _hub_db(args) as (_settings, _, db):
        tokens = list_tokens(db)
    if not tokens:
        print("no tokens yet (create one with `mbe-hub token create`)")
        return 0
    print(f"{'ID':<14} {'ROLE':<12} {'ORG':<20} {'CREATED':<21} {'REVOKED':<21} LABEL")
    for t in tokens:
        revoked = _when(t.revoked) if t.revoked is not None else "-"
        org = (t.org or "(all)")[:20]
        label = t.label or "-"
        print(
            f"{t.token_id:<14} {t.role:<12} {org:<20} {_when(t.created):<21} {revoked:<21} {label}"
        )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with _hub_db(args) as (_settings, _, db):
        record, was_live = revoke_token(db, args.token_id, int(time.time()))
    if was_live:
        print(f"token {record.token_id} revoked; its dashboard sessions are ended")
    else:
        print(f"token {record.token_id} was already revoked")
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    settings = load_settings(args.dir)
    copied = migrate_db(settings.db_path, args.to, progress=lambda line: print(line, flush=True))
    print("\n".join(migrate_summary(copied, settings.data_dir / CONFIG_FILE)))
    return 0


async def _serve(settings: HubSettings, host: str, port: int) -> None:
    app = create_app(settings, extensions=[add_stats])
    runner = web.AppRunner(app, access_log=None, handle_signals=False, **SERVER_LIMITS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        for addr in runner.addresses:
            log.info("hub.listening", host=str(addr[0]), port=int(addr[1]))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("hub.stopping")
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    settings, _ = _open(args)
    logsetup.configure_logging(settings.log_level)
    host = args.host if args.host is not None else settings.server.host
    port = args.port if args.port is not None else settings.server.port
    try:
        asyncio.run(_serve(settings, host, port))
    except OSError as exc:
        raise DataDirError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return 0


def _dir(value: str) -> Path:
    return Path(value).expanduser()


def _port(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0 to 65535)")
    return int(value)


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (the full usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _undecodable(argv: Sequence[str]) -> bool:
    """True if an argument held bytes that are not UTF-8 (they arrive as lone surrogates)."""
    try:
        for arg in argv:
            arg.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mbe-hub", description="mbe-sync regional hub")
    # Subparsers are _Parser too (argparse uses the parent's class); typed as the
    # base class because the action is invariant and backup.add_commands takes that.
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND"),
    )

    p = sub.add_parser("init", help="create a data directory: config, keys, database")
    p.add_argument("--dir", type=_dir, required=True)
    p.add_argument("--region", default="region", help="region name shown in the directory")
    p.add_argument("--url", default="http://127.0.0.1:8470", help="public https URL of the hub")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="run the hub (behind a TLS reverse proxy)")
    p.add_argument("--dir", type=_dir, required=True)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=_port, default=None)
    p.set_defaults(func=cmd_serve)

    site = sub.add_parser("site", help="add, list or revoke sites").add_subparsers(
        dest="site_command", metavar="ACTION", required=True
    )
    p = site.add_parser("add", help="add a site and print its one-time enrollment code")
    p.add_argument("--dir", type=_dir, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--org", required=True)
    p.add_argument("--service", action="append", metavar="S", help="repeatable")
    p.add_argument("--language", action="append", metavar="L", help="repeatable, e.g. de")
    p.add_argument("--area", default="")
    p.add_argument(
        "--duplicate-name",
        action="store_true",
        help="add a second site with the name of an existing one (else refused)",
    )
    p.set_defaults(func=cmd_site_add)
    p = site.add_parser("code", help="issue a new enrollment code for a site not yet enrolled")
    p.add_argument("--dir", type=_dir, required=True)
    p.add_argument("node_id")
    p.set_defaults(func=cmd_site_code)
    p = site.add_parser("list", help="list sites")
    p.add_argument("--dir", type=_dir, required=True)
    p.set_defaults(func=cmd_site_list)
    p = site.add_parser("revoke", help="revoke a site at once")
    p.add_argument("--dir", type=_dir, required=True)
    p.add_argument("node_id", metavar="NODE_ID")
    p.set_defaults(func=cmd_site_revoke)

    token = sub.add_parser(
        "token", help="create, list or revoke coordinator tokens"
    ).add_subparsers(dest="token_command", metavar="ACTION", required=True)
    p = token.add_parser("create", help="create a token (printed once)")
    p.add_argument("--dir", type=_dir, required=True)
    p.add_argument("--role", required=True, choices=["coordinator"])
    p.add_argument("--org", default=None)
    p.add_argument("--label", default=None, help="a note shown by `token list` (whose token)")
    p.set_defaults(func=cmd_token_create)
    p = token.add_parser("list", help="list tokens by id (the tokens themselves are not stored)")
    p.add_argument("--dir", type=_dir, required=True)
    p.set_defaults(func=cmd_token_list)
    p = token.add_parser("revoke", help="revoke a token and end its dashboard sessions at once")
    p.add_argument("--dir", type=_dir, required=True)
    p.add_argument("token_id", metavar="TOKEN_ID", help="id from `token list` (or the token)")
    p.set_defaults(func=cmd_token_revoke)

    db = sub.add_parser("db", help="the hub's database: move it to PostgreSQL").add_subparsers(
        dest="db_command", metavar="ACTION", required=True
    )
    p = db.add_parser(
        "migrate",
        help="copy hub.db into an empty PostgreSQL database, verified (stop the hub first)",
        description="Copy the hub's SQLite database into an empty PostgreSQL database in one"
        " transaction, verified table by table. Stop the hub first; hub.db is not changed.",
    )
    p.add_argument("--dir", type=_dir, required=True)
    p.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="postgresql://user@host:5432/dbname (the password from ~/.pgpass or PGPASSWORD)",
    )
    p.set_defaults(func=cmd_db_migrate)

    add_backup_commands(sub)
    add_stats_commands(sub, _dir)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The data directory holds keys and relay data: nothing in it is for other users.
    os.umask(0o077)
    parser = build_parser()
    if _undecodable(sys.argv[1:] if argv is None else argv):
        print("mbe-hub: error: an argument is not valid UTF-8 text", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command != "serve":
        logsetup.configure_logging("warning")
    try:
        return int(args.func(args))
    except HubError as exc:
        print(f"mbe-hub: error: {exc}", file=sys.stderr)
        return 1
    except ENGINE_ERRORS as exc:
        print(f"mbe-hub: error: database problem: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"mbe-hub: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
