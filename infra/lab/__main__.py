"""`python -m infra.lab up|verify|down` (what ./scripts/lab runs). Failures: one line, exit 1."""

from __future__ import annotations

import argparse
import sys

from infra.deploy.run import DeployError
from infra.inventory import InventoryError
from infra.lab.lab import Progress, StepError, down, run_checks, up
from infra.lab.machine import LabError


def main() -> int:
    parser = argparse.ArgumentParser(prog="./scripts/lab", description=__doc__)
    parser.add_argument("command", choices=["up", "verify", "down"])
    args = parser.parse_args()
    progress = Progress()
    try:
        if args.command == "up":
            result = up(progress)
            print(f"==> lab is up: {result.deploy.operations} operations deployed")
            print("    ./scripts/lab verify   re-runs the checks; ./scripts/lab down removes it")
        elif args.command == "verify":
            with progress.step("verify", "testinfra suite against the lab"):
                checks = run_checks()
            print(f"==> {checks.passed} checks passed, {checks.skipped} waived ({checks.log})")
        else:
            down()
    except (StepError, LabError, DeployError, InventoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
