"""Plan and apply: make Hetzner Cloud match the inventory, by name and labels.

`plan` only reads; `apply` acts on a plan. Both are re-runnable: a second apply finds every
resource by name and changes nothing, and a run that stopped half-way is resumed, because
every resource is labelled with its inventory at creation and recorded in the state file the
moment it exists. Conflicts (a resource that cannot be corrected in place) stop `apply`
before it changes anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hcloud import APIException, Client

from infra.inventory import Inventory
from infra.provision import kinds
from infra.provision.desired import Desired, base_labels, desired_resources
from infra.provision.guard import ALLOWED_LOCATION, ALLOWED_ZONE, check_resources

Action = Literal["create", "update", "unchanged", "conflict"]


class ProvisionError(Exception):
    """Provisioning stopped; the message says why and what to do."""


@dataclass
class Change:
    desired: Desired
    action: Action
    diffs: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # key -> (seen, wanted)
    bound: Any = None

    def line(self) -> str:
        what = f"{self.desired.kind.replace('_', ' ')} {self.desired.name}"
        detail = "; ".join(f"{k}: {seen!r} -> {want!r}" for k, (seen, want) in self.diffs.items())
        return f"  {self.action:<9} {what}" + (f"  ({detail})" if detail else "")


@dataclass
class Plan:
    inventory: str
    changes: list[Change]
    orphans: list[str]

    def count(self, action: Action) -> int:
        return sum(c.action == action for c in self.changes)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action in ("create", "update")]

    def render(self) -> str:
        lines = [f"Plan for {self.inventory} (location {ALLOWED_LOCATION}):"]
        lines += [c.line() for c in self.changes]
        lines += [f"  orphan    {o}  (labelled for {self.inventory}, not in the inventory: "
                  "delete or re-add by hand)" for o in self.orphans]  # fmt: skip
        counts = ", ".join(f"{self.count(a)} {a}" for a in ("create", "update", "unchanged"))
        return "\n".join([*lines, f"Summary: {counts}, {self.count('conflict')} conflict"])


def api_error(exc: APIException, doing: str) -> ProvisionError:
    """One clear line for an API error."""
    if exc.code in {"unauthorized", 401}:
        return ProvisionError(
            "the Hetzner API rejected the token (unauthorized): check that HCLOUD_TOKEN "
            "belongs to this project and has read & write permission"
        )
    if exc.code == "rate_limit_exceeded":
        return ProvisionError(
            f"{doing}: Hetzner API rate limit exhausted even after waiting for RateLimit-Reset; "
            "re-run later (the run resumes where it stopped)"
        )
    return ProvisionError(f"{doing}: Hetzner API error {exc.code}: {exc.message}")


def _confirm_location(client: Client) -> None:
    """The API's own word that hel1 lies in eu-central (and that the token works)."""
    location = client.locations.get_by_name(ALLOWED_LOCATION)
    if location is None or location.network_zone != ALLOWED_ZONE:
        raise ProvisionError(f"the API does not report {ALLOWED_LOCATION} in {ALLOWED_ZONE}")


def _compare(d: Desired, bound: Any) -> Change:
    if bound is None:
        return Change(d, "create")
    want, seen = kinds.expected(d), kinds.observe(d.kind, bound)
    diffs = {k: (seen.get(k), v) for k, v in want.items() if seen.get(k) != v}
    if not diffs:
        return Change(d, "unchanged", bound=bound)
    fixable = set(diffs) <= kinds.FIXABLE
    return Change(d, "update" if fixable else "conflict", diffs, bound)


def _orphans(client: Client, inventory: Inventory, wanted: set[tuple[str, str]]) -> list[str]:
    labels = base_labels(inventory)
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    found = []
    for kind, collection in kinds.COLLECTION.items():
        for bound in getattr(client, collection).get_all(label_selector=selector):
            if (kind, bound.name) not in wanted:
                found.append(f"{kind.replace('_', ' ')} {bound.name}")
    return found


def plan(client: Client, inventory: Inventory) -> Plan:
    """Compare the inventory with the API (reads only). The residency guard runs first."""
    desired = desired_resources(inventory)
    check_resources(desired)
    for d in desired:
        kinds.expected(d)  # fail on unreadable local inputs before any request
    doing = "reading the current state"
    try:
        _confirm_location(client)
        changes = []
        for d in desired:
            doing = f"reading {d.kind.replace('_', ' ')} {d.name}"
            bound = getattr(client, kinds.COLLECTION[d.kind]).get_by_name(d.name)
            changes.append(_compare(d, bound))
        doing = "listing resources labelled for this inventory"
        orphans = _orphans(client, inventory, {(d.kind, d.name) for d in desired})
    except APIException as exc:
        raise api_error(exc, doing) from None
    return Plan(inventory.name, changes, orphans)


class StateFile:
    """`inventories/state/<inventory>.json`: what exists, written as soon as it exists."""

    def __init__(self, path: Path, inventory: str) -> None:
        self.path = path
        self.data: dict[str, Any] = {"inventory": inventory, "resources": {}, "hosts": {}}
        if path.is_file():
            self.data |= json.loads(path.read_text())

    def record(self, kind: str, name: str, ident: int) -> None:
        self.data["resources"].setdefault(kind, {})[name] = ident
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)


def _apply_change(client: Client, change: Change, refs: kinds.Refs, state: StateFile) -> None:
    d = change.desired
    if change.action == "create":
        change.bound = kinds.create(client, d, refs)
        state.record(d.kind, d.name, change.bound.id)
        change.bound = getattr(client, kinds.COLLECTION[d.kind]).get_by_id(change.bound.id)
        after = _compare(d, change.bound)  # what creation alone did not set (protection)
        for key, (seen, want) in after.diffs.items():
            kinds.fix(client, d.kind, change.bound, key, want=want, seen=seen)
    elif change.action == "update":
        for key, (seen, want) in change.diffs.items():
            kinds.fix(client, d.kind, change.bound, key, want=want, seen=seen)
    refs[(d.kind, d.name)] = change.bound


def apply(
    client: Client,
    current: Plan,
    state: StateFile,
    ssh_port: Callable[[str], int] = lambda _name: 22,
) -> None:
    """Carry out a plan; refuse one with conflicts. Record hosts' addresses in the state file."""
    conflicts = [c for c in current.changes if c.action == "conflict"]
    if conflicts:
        listing = "\n".join(c.line() for c in conflicts)
        raise ProvisionError(f"nothing changed: resources differ in ways only a human may fix:\n"
                             f"{listing}")  # fmt: skip
    refs: kinds.Refs = {}
    for change in current.changes:
        what = f"{change.action} {change.desired.kind.replace('_', ' ')} {change.desired.name}"
        try:
            _apply_change(client, change, refs, state)
        except APIException as exc:
            done = sum(len(v) for v in state.data["resources"].values())
            error = api_error(exc, what)
            raise ProvisionError(
                f"{error}\n{done} resources are recorded in {state.path}; "
                "re-run to resume (nothing is created twice)"
            ) from None
    _record_hosts(current, state, ssh_port)


def _record_hosts(current: Plan, state: StateFile, ssh_port: Callable[[str], int]) -> None:
    for change in current.changes:
        if change.desired.kind != "server":
            continue
        server = change.bound
        state.data["hosts"][server.name] = {
            "ssh_hostname": server.public_net.ipv4.ip,
            "ssh_port": ssh_port(server.name),
            "public_ipv4": server.public_net.ipv4.ip,
            "public_ipv6": server.public_net.ipv6 and server.public_net.ipv6.ip,
            "private_ipv4": server.private_net[0].ip if server.private_net else None,
            "server_id": server.id,
            "location": server.location.name,
        }
    state.save()
