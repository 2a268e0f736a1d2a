"""`cloop-ops verify INVENTORY`: the testinfra suite (tests/hosts) against an inventory's hosts.

The suite is the same for the lab and production; what differs is where hosts are reached and
which extra group data applies (the lab's runtime values), passed through the environment.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.inventory import INVENTORIES, REPO, Host, Inventory, InventoryError, load
from infra.lab.paths import GROUP_DATA

SUITE = REPO / "tests" / "hosts"
ENV_INVENTORY = "CLOOP_VERIFY_INVENTORY"
ENV_GROUP_DATA = "CLOOP_VERIFY_GROUP_DATA"
SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|error)")


@dataclass(frozen=True)
class VerifyResult:
    passed: int
    failed: int
    skipped: int
    log: Path

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0


def host_data(inventory: Inventory, host: Host, extra: list[Path]) -> dict[str, Any]:
    """A host's data as pyinfra merges it: all, its role groups, debian13, then extra folders."""
    groups = ["all", *sorted(host.roles), "debian13"]
    data: dict[str, Any] = {}
    for folder in [INVENTORIES / "group_data", *extra]:
        for group in groups:
            file = folder / f"{group}.py"
            if file.is_file():
                data |= {k: v for k, v in runpy.run_path(str(file)).items() if k[0] != "_"}
    return data | host.model_dump(exclude_none=True)


def extra_group_data() -> list[Path]:
    return [Path(p) for p in os.environ.get(ENV_GROUP_DATA, "").split(os.pathsep) if p]


def verify(
    inventory: str, log: Path, group_data: list[Path] | None = None, args: list[str] | None = None
) -> VerifyResult:
    """Run the suite; its output goes to `log` and the counts come back."""
    load(inventory)  # a clear error for an unknown or invalid inventory, before pytest starts
    env = os.environ | {
        ENV_INVENTORY: inventory,
        ENV_GROUP_DATA: os.pathsep.join(str(p) for p in group_data or []),
    }
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-rs", "--durations=5"]
    cmd += ["-p", "no:cacheprovider"]
    with log.open("w") as out:
        subprocess.run(
            [*cmd, *(args or [])], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            check=False,
        )  # fmt: skip
    counts = dict.fromkeys(("passed", "failed", "skipped", "error"), 0)
    tail = log.read_text().splitlines()[-1:] or [""]
    for number, kind in SUMMARY.findall(tail[0]):
        counts[kind] = int(number)
    return VerifyResult(
        counts["passed"], counts["failed"] + counts["error"], counts["skipped"], log
    )


def main(
    inventory: Annotated[str, typer.Argument(help="inventory name: production, staging or lab")],
) -> None:
    """Run the testinfra hardening suite (tests/hosts) against the inventory's hosts."""
    extra = [GROUP_DATA] if inventory == "lab" and GROUP_DATA.is_dir() else []
    log = REPO / "var" / f"verify-{inventory}.log"
    log.parent.mkdir(exist_ok=True)
    try:
        result = verify(inventory, log, extra)
    except InventoryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{result.passed} passed, {result.failed} failed, {result.skipped} waived ({log})")
    if not result.ok:
        raise typer.Exit(1)
