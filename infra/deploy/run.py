"""Run the deploy with pyinfra's own CLI and report what it changed.

The lab (and `cloop-ops deploy`) call this; a second run that changes nothing is the proof
that every operation reads the host's state first.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from infra.inventory import INVENTORIES, REPO, InventoryError, load
from infra.lab.paths import GROUP_DATA

DEPLOY = REPO / "infra" / "deploy" / "deploy.py"
TOTAL = re.compile(r"Grand total\s+(\d+)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)")


class DeployError(Exception):
    """pyinfra failed; the message names the operation and host from its output."""


@dataclass(frozen=True)
class DeployResult:
    operations: int
    changed: int
    seconds: float
    log: Path


def deploy(inventory: str, log: Path, group_data: list[Path] | None = None) -> DeployResult:
    """`pyinfra inventories/<name>.py infra/deploy/deploy.py`; output goes to `log`."""
    cmd = [sys.executable, "-m", "pyinfra", str(INVENTORIES / f"{inventory}.py"), str(DEPLOY)]
    for folder in [INVENTORIES / "group_data", *(group_data or [])]:
        cmd += ["--group-data", str(folder)]
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            [*cmd, "-y"], cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    output = log.read_text()
    if result.returncode != 0:
        raise DeployError(f"deploy failed: {_failure(output)} (full output: {log})")
    total = TOTAL.search(output)
    if total is None:
        raise DeployError(f"deploy: no summary in pyinfra's output ({log})")
    ops, changed = (int(v) if v != "-" else 0 for v in total.groups()[:2])
    return DeployResult(ops, changed, time.monotonic() - started, log)


def _failure(output: str) -> str:
    """The operation that failed and pyinfra's error line, from its output."""
    current = ""
    for line in output.splitlines():
        if line.startswith("--> Starting operation:"):
            current = line.removeprefix("--> Starting operation:").strip()
        if "Error" in line or "error" in line:
            return f"{current}: {line.strip()}" if current else line.strip()
    return "pyinfra exited with an error"


def main(
    inventory: Annotated[str, typer.Argument(help="inventory name: production, staging or lab")],
) -> None:
    """Run the pyinfra deploy (infra/deploy/deploy.py) against the inventory's hosts."""
    extra = [GROUP_DATA] if inventory == "lab" and GROUP_DATA.is_dir() else []
    log = REPO / "var" / f"deploy-{inventory}.log"
    log.parent.mkdir(exist_ok=True)
    try:
        load(inventory)
        result = deploy(inventory, log, extra)
    except (InventoryError, DeployError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{result.operations} operations, {result.changed} changed ({log})")
