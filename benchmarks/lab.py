"""The lab: a fresh `lab up`, a no-change re-deploy, a re-verify, and Lynis' index.

Baseline (same run): one SSH round trip to a lab host (`ssh host true`, new connection), so
the deploy and verify figures read as "N round trips of about this cost" on any machine.
Needs root; leaves nothing behind (`lab down` at the end, whatever happened).
"""

from __future__ import annotations

import statistics
import subprocess
import time

from infra import inventory
from infra.deploy.run import deploy
from infra.lab import lab, machine
from infra.lab.paths import GROUP_DATA, STATE_DIR
from infra.verify import verify


def ssh_round_trip_ms(port: int) -> float:
    samples = []
    for _ in range(5):
        started = time.monotonic()
        subprocess.run(
            ["ssh", "-p", str(port), "-i", str(lab.KEY), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={machine.KNOWN_HOSTS}", "root@127.0.0.1", "true"],
            capture_output=True, check=True,
        )  # fmt: skip
        samples.append((time.monotonic() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    lab.down(out=lambda line: None)
    try:
        started = time.monotonic()
        up = lab.up(lab.Progress())
        lab_up_s = time.monotonic() - started
        redeploy = deploy(lab.INVENTORY, STATE_DIR / "redeploy.log", [GROUP_DATA])
        started = time.monotonic()
        checked = verify(lab.INVENTORY, STATE_DIR / "verify-bench.log", [GROUP_DATA])
        verify_s = time.monotonic() - started
        hosts = inventory.read_state(inventory.state_path(lab.INVENTORY))["hosts"]
        baseline = ssh_round_trip_ms(int(next(iter(hosts.values()))["ssh_port"]))
    finally:
        lab.down(out=lambda line: None)
    for step, seconds in up.timings.items():
        print(f"lab up step {step:<10} {seconds:7.1f} s")
    print(f"deploy: {up.deploy.operations} operations; re-deploy changed {redeploy.changed}")
    print(f"verify: {checked.passed} passed, {checked.skipped} waived, {checked.failed} failed")
    print(f"baseline: one SSH round trip {baseline:.0f} ms")
    print(
        f"lab_up_s={lab_up_s:.1f} redeploy_s={redeploy.seconds:.1f} "
        f"redeploy_changes={redeploy.changed} verify_s={verify_s:.1f} "
        f"checks={checked.passed + checked.skipped + checked.failed} "
        f"lynis_index={up.lynis_index} ssh_rtt_ms={baseline:.0f}"
    )


if __name__ == "__main__":
    main()
