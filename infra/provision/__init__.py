"""Provision an inventory in Hetzner Cloud (hel1 only) and its object-storage buckets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from infra.inventory import Inventory
from infra.provision.client import CallCounter, make_client
from infra.provision.desired import desired_resources
from infra.provision.engine import Plan, StateFile, apply, plan
from infra.provision.guard import check_resources


def provision(
    inventory: Inventory,
    *,
    token: str,
    endpoint: str,
    state_path: Path,
    dry_run: bool = False,
    out: Callable[[str], None] = print,
    ssh_port: Callable[[str], int] = lambda _name: 22,
) -> tuple[Plan, CallCounter]:
    """Guard, plan, print the plan and (unless `dry_run`) apply it. Returns the plan and the
    API calls made."""
    check_resources(desired_resources(inventory))  # before a client even exists
    client, calls = make_client(token, endpoint)
    current = plan(client, inventory)
    out(current.render())
    if not dry_run:
        changes = len(current.pending)  # counted before apply turns them into results
        apply(client, current, StateFile(state_path, inventory.name), ssh_port)
        out(f"Applied {changes} change(s); host addresses in {state_path}")
    return current, calls
