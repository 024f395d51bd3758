"""Demo only: run an mbe-sync program whose wall clock is "real time + offset".

`python -m demo.timeshift OFFSET_FILE MODULE [ARGS...]` replaces `time.time`
(and `time.time_ns`) of this process, then runs MODULE as `python -m MODULE
ARGS...` would (e.g. `hub.cli serve --dir ...`). The offset, in seconds (possibly
negative), is read from OFFSET_FILE whenever the file changed (one stat per
call, a read only after a change), so the demo moves the clock of every process
at once by writing one file, and hub and nodes keep agreeing on the time.

Why this works without any hook in the programs: they take wall time from
`support.clock.SystemClock` (`time.time()`, and `date.today()`, which CPython
computes from `time.time()`) and the hub's command lines from `time.time()`;
both are looked up when called. `time.monotonic` (asyncio's timers, the nodes'
backoff) is left alone: intervals stay real. `datetime.now()` does not follow
(only backups use it). The shipped programs have no such knob; this module is
not installed with them.
"""

from __future__ import annotations

import datetime as dt
import os
import runpy
import sys
import threading
import time
from pathlib import Path

OFFSET_FILE = "clock-offset"
# Real wall time, kept before anything replaces it.
_real_time = time.time


class Offset:
    """The offset in OFFSET_FILE, re-read only when the file changed (0 when absent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._value = 0.0

    def __call__(self) -> float:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return 0.0
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if key != self._seen:
                text = self.path.read_text(encoding="ascii").strip()
                self._value = float(text) if text else 0.0
                self._seen = key
            return self._value


def install(path: Path) -> None:
    """Replace this process's wall clock with real time + the offset in `path`."""
    offset = Offset(path)

    def shifted() -> float:
        return _real_time() + offset()

    def shifted_ns() -> int:
        return int(shifted() * 1e9)

    time.time = shifted
    time.time_ns = shifted_ns


def write_offset(path: Path, seconds: float) -> None:
    """Set the offset for every process at once (a new file renamed into place)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{seconds:.3f}\n", encoding="ascii")
    os.replace(tmp, path)


class DemoClock:
    """The demo's side: where the processes' clock is, and moving it forward only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = Offset(path)

    def now(self) -> float:
        """The processes' wall time (unix seconds)."""
        return _real_time() + self._offset()

    def moment(self, zone: dt.tzinfo) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), zone)

    def start_at(self, when: float) -> None:
        """Where the clock starts, before any process ran on it."""
        if self.path.exists():
            raise ValueError("the demo clock has started already")
        write_offset(self.path, when - _real_time())

    def move_to(self, when: float) -> None:
        """Set the processes' wall time to `when`; never backwards, never past real now."""
        when = min(when, _real_time())
        if when < self.now():
            raise ValueError("the demo clock only moves forward")
        write_offset(self.path, when - _real_time())


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python -m demo.timeshift OFFSET_FILE MODULE [ARGS...]")
    install(Path(argv[0]))
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
