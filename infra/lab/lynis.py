"""An independent audit: Lynis (Debian's package) on a lab host, its hardening index (OPS-1)."""

from __future__ import annotations

import re
import subprocess

from infra.lab.machine import KNOWN_HOSTS, LabError

INDEX = re.compile(r"^hardening_index=(\d+)$", re.MULTILINE)


def hardening_index(name: str, port: int, key: str) -> int:
    """Run `lynis audit system` over SSH and read the index from its report."""
    script = (
        "lynis audit system --quick --no-colors --quiet >/dev/null 2>&1; "
        "grep '^hardening_index=' /var/log/lynis-report.dat"
    )
    result = subprocess.run(
        ["ssh", "-p", str(port), "-i", key, "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={KNOWN_HOSTS}", "-o", "StrictHostKeyChecking=yes",
         "root@127.0.0.1", script],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    found = INDEX.search(result.stdout)
    if found is None:
        raise LabError(f"[{name}] lynis: no hardening index ({result.stderr.strip()[-200:]})")
    return int(found.group(1))
