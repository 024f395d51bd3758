"""What a hostile upload costs the hub: memory, time to the refusal, /health meanwhile.

Starts `mbe-hub serve` as a subprocess (production limits: 32 MiB bodies, 1000
envelopes per upload), enrolls one node, and sends, correctly signed, bodies
built to be cheap to send and expensive to decode (issue 10, item 1):

* `maps`: `{envelopes: [[{}, {}, ...], ...]}`, 15 MiB of one-byte empty maps;
* `envelopes`: fifteen 1 MiB envelopes, each a map of arrays of empty maps;
* `legit`: a real upload of 1000 sealed receipts (1 KiB bucket), an honest
  node's largest batch by count, for comparison.

For each it prints the answer's status, the seconds until it arrived, the
slowest `/health` answer while it was handled (probed every 10 ms), and the
hub's peak resident memory (VmHWM, Linux) before and after. Run:
`python -m bench.hostile` (add `--size 30` for a 30 MiB body of maps).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.relay import Server, SimNode, make_envelopes, prepare_hub, signed_headers
from protocol.encoding import pack, unpack
from protocol.enrollment import EnrollmentCode, EnrollmentRequest
from protocol.envelope import MAX_ENVELOPE
from protocol.keys import PrivateKeys

MIB = 1 << 20


def nested_maps(size: int, key: str, per_array: int = 1000) -> bytes:
    inner = b"\xdc" + per_array.to_bytes(2, "big") + b"\x80" * per_array
    n = max(1, size // len(inner))
    return b"\x81" + pack(key) + b"\xdd" + n.to_bytes(4, "big") + inner * n


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM) in bytes; 0 where /proc is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def measure(
    http: aiohttp.ClientSession, node: SimNode, body: bytes
) -> tuple[int, float, float]:
    """(status, seconds to the answer, slowest /health) for one signed upload."""
    slowest = 0.0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal slowest
        while True:
            started = time.perf_counter()
            async with http.get("/health") as resp:
                await resp.read()
            slowest = max(slowest, time.perf_counter() - started)
            if done.is_set():
                return
            await asyncio.sleep(0.01)

    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    headers = signed_headers(node, "POST", "/v1/messages", body)
    headers["Content-Type"] = "application/msgpack"
    async with http.post("/v1/messages", data=body, headers=headers) as resp:
        await resp.read()
        status = resp.status
    elapsed = time.perf_counter() - started
    done.set()
    await prober
    return status, elapsed, slowest


async def bench(size_mib: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mbe-bench-") as tmp:
        data_dir = Path(tmp) / "hub"
        codes = prepare_hub(data_dir, 2, 1000)
        hub = await Server.start(
            ["-m", "hub.cli", "serve", "--dir", str(data_dir), "--port", "0"], '"hub.listening"'
        )
        try:
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{hub.port}") as http:
                nodes = []
                for code in codes:
                    keys = PrivateKeys.generate()
                    req = EnrollmentRequest.create(EnrollmentCode.parse(code), keys).encode()
                    async with http.post("/v1/enroll", data=req) as resp:
                        ans = unpack(await resp.read(), 16 << 20)
                    nodes.append(SimNode(ans["node_id"], keys))
                sender, recipient = nodes
                one = nested_maps(MAX_ENVELOPE - 64, "ct")
                cases = [
                    (
                        "legit",
                        pack(
                            {
                                "envelopes": make_envelopes(
                                    [sender], [recipient], 1000, random_ids=False
                                )[sender.node_id]
                            }
                        ),
                    ),
                    ("maps", nested_maps(size_mib * MIB, "envelopes")),
                    ("envelopes", pack({"envelopes": [one] * 15})),
                ]
                print(f"hub peak RSS at start: {peak_rss(hub.proc.pid) / MIB:.0f} MiB")
                for name, body in cases:
                    status, elapsed, slowest = await measure(http, sender, body)
                    print(
                        f"{name:>10}: {len(body) / MIB:5.1f} MiB body -> HTTP {status} in"
                        f" {elapsed:.3f} s; slowest /health {slowest:.3f} s;"
                        f" hub peak RSS {peak_rss(hub.proc.pid) / MIB:.0f} MiB"
                    )
        finally:
            await hub.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=15, help="MiB of one-byte maps (default 15)")
    args = parser.parse_args()
    asyncio.run(bench(args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
