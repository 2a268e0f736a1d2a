"""OpenSSH from the operator's machine, with one known-hosts file per purpose.

The rescue system, the unlock shell (dropbear) and the installed system answer on the same
address with different host keys; each gets its own file so that none overwrites another and
a changed key is an error, not a prompt.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class UnreachableError(Exception):
    """No SSH server answered in time at the address."""


@dataclass(frozen=True)
class Remote:
    """root@hostname:port, checked against `known_hosts` (pinned unless `trust_first`)."""

    hostname: str
    port: int
    known_hosts: Path
    identity: Path | None = None
    trust_first: bool = False

    def _args(self, timeout: int) -> list[str]:
        checking = "accept-new" if self.trust_first else "yes"
        args = [
            "ssh", "-p", str(self.port), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"StrictHostKeyChecking={checking}", "-o", f"ConnectTimeout={timeout}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=8",
        ]  # fmt: skip
        if self.identity is not None:
            args += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        return [*args, f"root@{self.hostname}"]

    def run(
        self,
        command: str,
        data: bytes | None = None,
        source: IO[bytes] | None = None,
        timeout: int = 30,
        limit_s: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `command`; stdin is `data` or the file `source`; output captured, no check.

        `limit_s` bounds the whole call: a port forward accepts the TCP connection before the
        machine behind it is up, so ssh would wait for its banner forever.
        """
        args = [*self._args(timeout), command]
        try:
            return subprocess.run(
                args, input=data, stdin=source, capture_output=True, check=False, timeout=limit_s
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 255, b"", b"timed out")

    def wait(self, deadline_s: float, probe: str = "true") -> float:
        """Poll until `probe` succeeds; return the seconds waited."""
        start = time.monotonic()
        while True:
            if self.run(probe, timeout=10, limit_s=30).returncode == 0:
                return time.monotonic() - start
            if time.monotonic() - start > deadline_s:
                raise UnreachableError(
                    f"nothing answered SSH at {self.hostname}:{self.port} within {deadline_s:.0f} s"
                )
            time.sleep(2)
