"""A hub and several office nodes as real processes on loopback.

Used by `make demo` and by the end-to-end tests. Everything goes through the
`mbe-hub` / `mbe-node` command lines and the HTTP APIs.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.processes import ClusterError, Service, cli, cli_batch, free_port

_CODE = re.compile(r"enrollment code:\s+(\S+)")
_NODE_ID = re.compile(r"node id:\s+(\S+)")


# The demo hub's stats.grace_days, the most the hub allows: every month of the past
# year still has its deadline ahead, so the offices' reports of it count (see start_hub).
DEMO_GRACE_DAYS = 366


@dataclass(frozen=True)
class Office:
    """An office to set up: the `site add` arguments."""

    name: str
    org: str
    services: tuple[str, ...]
    languages: tuple[str, ...]
    area: str


class ApiError(Exception):
    """A node API call answered with an error status."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('title')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem


@dataclass
class NodeApi:
    """A minimal JSON client for a node's local API, as a counselling app uses it."""

    base: str
    token: str

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310 (loopback)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 (loopback)
                raw = r.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"title": "non-JSON error", "detail": raw[:200].decode(errors="replace")}
            raise ApiError(exc.code, problem) from None
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body if body is not None else {})


@dataclass
class Node:
    office: Office
    node_id: str
    service: Service
    api: NodeApi


@dataclass
class Cluster:
    """Set up with `start_hub()`, then `add_node()` per office; `stop()` at the end."""

    root: Path
    hub: Service | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    # The demo's clock offset file (demo/timeshift.py): every process and command
    # line of the cluster then runs on the demo's clock. None: real time.
    clock: Path | None = None
    # Ports handed to nodes, so offices enrolled in parallel threads never share one.
    _ports: set[int] = field(default_factory=set, repr=False)
    _ports_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def hub_dir(self) -> Path:
        return self.root / "hub"

    def start_hub(
        self,
        region: str = "Mittelfranken",
        *,
        grace_days: int | None = DEMO_GRACE_DAYS,
        relay: Mapping[str, float | int] | None = None,
        enrollment: Mapping[str, float | int] | None = None,
        directory: Mapping[str, float | int] | None = None,
    ) -> Service:
        """Initialise and start the hub; `grace_days` None keeps the hub's default,
        `relay`, `enrollment` and `directory` set keys of those sections of hub.toml."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cli(
            "hub", "init", "--dir", str(self.hub_dir), "--region", region, "--url", url,
            clock=self.clock,
        )  # fmt: skip
        config = self.hub_dir / "hub.toml"
        text = config.read_text(encoding="utf-8")
        sections = (("relay", relay), ("enrollment", enrollment), ("directory", directory))
        for section, options in sections:
            lines = "".join(f"{key} = {value!r}\n" for key, value in (options or {}).items())
            text = text.replace(f"\n[{section}]\n", f"\n[{section}]\n{lines}", 1)
        if grace_days is not None:
            # DEMO_GRACE_DAYS: long enough that the deadlines of the past year's
            # months have not passed, so the offices' reports of them still count;
            # the caller then publishes those periods early, as an operator may.
            text += f"\n[stats]\ngrace_days = {grace_days}\n"
        config.write_text(text, encoding="utf-8")
        self.hub = Service("hub", self.hub_dir, port, self.root / "hub.log", clock=self.clock)
        self.hub.start()
        return self.hub

    def add_node(
        self,
        key: str,
        office: Office,
        *,
        start: bool = True,
        sync: Mapping[str, float | int | bool] | None = None,
    ) -> Node:
        """Enroll an office; `start=False` leaves `node.service.start()` to the caller.

        Enrolling every office before starting any node means each node's first
        directory fetch already lists all of them. `sync` overrides `[sync]`
        keys of the node.toml that `mbe-node init` wrote.
        """
        hub = self._hub()
        clock = self.clock
        code, node_id = _enrollment(cli("hub", *self._site_add(office), clock=clock))
        node_dir = self.root / key
        cli("node", "init", "--dir", str(node_dir), clock=clock)
        if sync:
            set_sync_options(node_dir, sync)
        cli("node", "enroll", "--dir", str(node_dir), "--hub", hub.url, "--code", code, clock=clock)
        token = cli(
            "node", "token", "create", "--dir", str(node_dir), "--name", "demo-app", clock=clock
        )
        log = self.root / f"{key}.log"
        service = Service("node", node_dir, self._unused_port(), log, clock=clock)
        if start:
            service.start()
        node = Node(office, node_id, service, NodeApi(service.url, token.strip().splitlines()[-1]))
        self.nodes[key] = node
        return node

    def add_nodes(self, offices: Sequence[tuple[str, Office]], workers: int = 2) -> list[Node]:
        """Enroll several offices, none started, with fewer interpreters than `add_node`.

        The same commands as `add_node`: every `site add` in one hub interpreter,
        then each office's `init`, `enroll` and `token create` in one node
        interpreter (`cli_batch`), `workers` offices at a time. Nodes are added to
        `nodes` in the order given.
        """
        hub = self._hub()
        added = cli_batch("hub", [self._site_add(office) for _, office in offices], self.clock)
        codes = [_enrollment(out) for out in added]

        def enroll(i: int) -> Node:
            (key, office), (code, node_id) = offices[i], codes[i]
            node_dir = str(self.root / key)
            *_, token = cli_batch(
                "node",
                [
                    ["init", "--dir", node_dir],
                    ["enroll", "--dir", node_dir, "--hub", hub.url, "--code", code],
                    ["token", "create", "--dir", node_dir, "--name", "demo-app"],
                ],
                self.clock,
            )
            port, log = self._unused_port(), self.root / f"{key}.log"
            service = Service("node", Path(node_dir), port, log, clock=self.clock)
            app_token = token.strip().splitlines()[-1]
            return Node(office, node_id, service, NodeApi(service.url, app_token))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            nodes = list(pool.map(enroll, range(len(offices))))
        for (key, _), node in zip(offices, nodes, strict=True):
            self.nodes[key] = node
        return nodes

    def _hub(self) -> Service:
        if self.hub is None:
            raise ClusterError("start the hub first")
        return self.hub

    def _site_add(self, office: Office) -> list[str]:
        """The arguments of `mbe-hub site add` for `office`."""
        args = ["site", "add", "--dir", str(self.hub_dir), "--name", office.name]
        args += ["--org", office.org]
        for s in office.services:
            args += ["--service", s]
        for lang in office.languages:
            args += ["--language", lang]
        return [*args, "--area", office.area]

    def _unused_port(self) -> int:
        # free_port() only knows what is listening now; a node enrolled but not
        # yet started holds no socket, so its port could be handed out again.
        with self._ports_lock:
            taken = {n.service.port for n in self.nodes.values()} | self._ports
            if self.hub is not None:
                taken.add(self.hub.port)
            while True:
                port = free_port()
                if port not in taken:
                    self._ports.add(port)
                    return port

    def wait_directory(self, timeout: float = 30.0) -> None:
        """Wait until every running node's directory lists every office of the cluster."""
        want = {node.node_id for node in self.nodes.values()}
        deadline = time.monotonic() + timeout
        for key, node in self.nodes.items():
            while True:
                try:
                    offices = node.api.get("/api/v1/directory")["offices"]
                    if want <= {o["node_id"] for o in offices}:
                        break
                except ApiError as exc:
                    if exc.status != 409:
                        raise
                    # 409: no directory fetched yet, the sync worker is still starting
                if time.monotonic() > deadline:
                    raise ClusterError(f"node {key} did not see all offices within {timeout} s")
                time.sleep(0.1)

    def publish_stats(self, period: str) -> str:
        """Publish an ended period now (`mbe-hub stats publish`); its one-line answer."""
        out = cli(
            "hub", "stats", "publish", "--dir", str(self.hub_dir), "--period", period,
            clock=self.clock,
        )  # fmt: skip
        return out.strip()

    def publish_periods(self, periods: Sequence[str]) -> list[str]:
        """`publish_stats` of each period, in one interpreter (`cli_batch`); the answers."""
        commands = [
            ["stats", "publish", "--dir", str(self.hub_dir), "--period", p] for p in periods
        ]
        return [out.strip() for out in cli_batch("hub", commands, self.clock)]

    def coordinator_token(self, org: str | None = None) -> str:
        args = ["token", "create", "--dir", str(self.hub_dir), "--role", "coordinator"]
        if org is not None:
            args += ["--org", org]
        return cli("hub", *args, clock=self.clock).strip().splitlines()[-1]

    def stop(self) -> None:
        for node in self.nodes.values():
            node.service.stop()
        if self.hub is not None:
            self.hub.stop()


def _enrollment(site_add_output: str) -> tuple[str, str]:
    """The enrollment code and node id that `mbe-hub site add` printed."""
    code = _CODE.search(site_add_output)
    node_id = _NODE_ID.search(site_add_output)
    if code is None or node_id is None:
        raise ClusterError("mbe-hub site add printed no code")
    return code[1], node_id[1]


def set_sync_options(node_dir: Path, options: Mapping[str, float | int | bool]) -> None:
    """Rewrite `[sync]` keys in node.toml (every key is present, `mbe-node init` wrote it)."""
    set_node_options(node_dir, "sync", options)


def set_node_options(
    node_dir: Path, section: str, options: Mapping[str, float | int | bool]
) -> None:
    """Rewrite keys of one `[section]` of node.toml (`mbe-node init` wrote every key)."""
    path = node_dir / "node.toml"
    text = path.read_text(encoding="utf-8")
    found = re.search(rf"(?ms)^\[{re.escape(section)}\]$.*?(?=^\[|\Z)", text)
    if found is None:
        raise ClusterError(f"node.toml has no [{section}] section")
    body = found[0]
    for key, value in options.items():
        rendered = str(value).lower() if isinstance(value, bool) else repr(value)
        body, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {rendered}", body)
        if n != 1:
            raise ClusterError(f"node.toml has no single [{section}] key {key}")
    path.write_text(text[: found.start()] + body + text[found.end() :], encoding="utf-8")
