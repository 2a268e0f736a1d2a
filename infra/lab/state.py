"""What the lab started, recorded the moment it starts it, so `lab down` removes exactly that.

One JSON file (`.lab/state.json`) lists processes (with their start time, so a recycled PID is
never killed), network namespaces, mounts and the hosts' directories. Writers are serialised
with a lock because the Hetzner stand-in's lab backend records hosts while `lab up` runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.lab.paths import STATE_DIR

STATE_FILE = STATE_DIR / "state.json"


@contextmanager
def editing() -> Iterator[dict[str, Any]]:
    """Read, let the caller change, and write back the state under an exclusive lock."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / "state.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read()
        yield state
        tmp = STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(STATE_FILE)


def read() -> dict[str, Any]:
    if not STATE_FILE.is_file():
        return {}
    data: dict[str, Any] = json.loads(STATE_FILE.read_text())
    return data


def start_time(pid: int) -> int | None:
    """The kernel's start time of a process (ticks since boot), None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[19])


def process_record(pid: int, what: str) -> dict[str, Any]:
    return {"pid": pid, "start": start_time(pid), "what": what}


def alive(record: dict[str, Any]) -> bool:
    """True while the recorded process, and not a later one with its PID, still runs."""
    started = start_time(int(record["pid"]))
    return started is not None and started == record["start"]


def stop(record: dict[str, Any], timeout_s: float = 15.0) -> None:
    """SIGTERM the recorded process, SIGKILL it if it lingers; never touch a recycled PID."""
    if not alive(record):
        return
    pid = int(record["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while alive(record) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if alive(record):
        os.kill(pid, signal.SIGKILL)
        _reap(pid)


def _reap(pid: int) -> None:
    """Collect our own child's exit status (no zombie); others' are reaped by their parent."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
