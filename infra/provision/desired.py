"""What an inventory asks for in Hetzner Cloud: every resource with its name, place and settings.

Provisioning compares this with what the API reports; the residency guard and the compliance
documents' residency table read the same list, so they describe exactly what gets created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.inventory import ROLES, Host, IngressRule, Inventory, Role

MANAGED_BY = "cloop-ops"
LOAD_BALANCER_TYPE = "lb11"


@dataclass(frozen=True)
class Desired:
    """One resource. `spec` holds what is compared with the API's view (see `kinds.py`);
    `refs` names the resources it is created with (kind, name)."""

    kind: str
    name: str
    location: str | None
    labels: dict[str, str]
    spec: dict[str, Any] = field(default_factory=dict)
    refs: tuple[tuple[str, str], ...] = ()


def base_labels(inventory: Inventory) -> dict[str, str]:
    return {"managed-by": MANAGED_BY, "env": inventory.name}


def role_selector(inventory: Inventory, role: str) -> str:
    return f"managed-by={MANAGED_BY},env={inventory.name},role-{role}=true"


def server_type(inventory: Inventory, host: Host) -> str:
    """The type of the host's largest role (db > app > edge)."""
    largest: Role = next(r for r in reversed(ROLES) if r in host.roles)
    return inventory.env.server_types[largest]


def _rules(rules: list[IngressRule]) -> list[dict[str, Any]]:
    anywhere = ["0.0.0.0/0", "::/0"]
    return [
        {
            "direction": "in",
            "protocol": r.protocol,
            "port": r.port,
            "source_ips": anywhere,
            "destination_ips": [],
            "description": r.description,
        }
        for r in rules
    ]


def _firewalls(inventory: Inventory, labels: dict[str, str]) -> list[Desired]:
    """One Cloud Firewall per group with ingress rules, applied by label selector."""
    found = []
    for group, rules in inventory.data.ingress.items():
        selector = f"managed-by={MANAGED_BY},env={inventory.name}"
        if group != "debian13":
            selector = role_selector(inventory, group)
        spec = {"rules": _rules(rules), "apply_to": [selector]}
        found.append(Desired("firewall", f"{inventory.prefix}-{group}", None, labels, spec))
    return found


def _host_resources(inventory: Inventory, host: Host, labels: dict[str, str]) -> list[Desired]:
    loc = inventory.data.location
    protect = {"delete": True}
    ips = [
        Desired("primary_ip", f"{host.name}-{family}", loc, labels,
                {"type": family, "location": loc, "protection": protect, "auto_delete": False})
        for family in ("ipv4", "ipv6")
    ]  # fmt: skip
    volumes = []
    if "db" in host.roles:
        spec = {"location": loc, "size": inventory.env.db_volume_gb, "protection": protect}
        volumes.append(Desired("volume", f"{host.name}-data", loc, labels, spec))
    roles = {f"role-{r}": "true" for r in sorted(host.roles)}
    refs = [("ssh_key", f"{inventory.prefix}-{k}") for k in inventory.data.ssh_keys]
    refs += [("network", inventory.prefix), ("placement_group", inventory.prefix)]
    refs += [(d.kind, d.name) for d in (*ips, *volumes)]
    spec = {
        "location": loc,
        "server_type": server_type(inventory, host),
        "image": inventory.data.image,
        "protection": {"delete": True, "rebuild": True},
        "placement_group": inventory.prefix,
    }
    server = Desired("server", host.name, loc, labels | roles, spec, tuple(refs))
    return [*ips, *volumes, server]


def _load_balancer(inventory: Inventory, labels: dict[str, str]) -> list[Desired]:
    """A load balancer in front of the edge hosts once there are several app hosts."""
    if sum("app" in h.roles for h in inventory.hosts) < 2:
        return []
    loc = inventory.data.location
    spec = {
        "location": loc,
        "load_balancer_type": LOAD_BALANCER_TYPE,
        "services": [{"listen_port": p, "destination_port": p} for p in (80, 443)],
        "targets": [role_selector(inventory, "edge")],
        "protection": {"delete": True},
    }
    refs = (("network", inventory.prefix),)
    return [Desired("load_balancer", f"{inventory.prefix}-lb", loc, labels, spec, refs)]


def desired_resources(inventory: Inventory) -> list[Desired]:
    """Everything to create, in creation order (a resource after those it refers to)."""
    labels = base_labels(inventory)
    data, prefix = inventory.data, inventory.prefix
    keys = [Desired("ssh_key", f"{prefix}-{k}", None, labels, {"public_key_file": path})
            for k, path in data.ssh_keys.items()]  # fmt: skip
    net = data.private_network
    spec = {
        "ip_range": net.ip_range,
        "subnets": [net.subnet],
        "network_zone": data.network_zone,
        "protection": {"delete": True},
    }
    network = Desired("network", prefix, None, labels, spec)
    group = Desired("placement_group", prefix, None, labels, {"type": "spread"})
    hosts = [d for h in inventory.hosts for d in _host_resources(inventory, h, labels)]
    order = ["primary_ip", "volume", "server"]
    hosts.sort(key=lambda d: order.index(d.kind))
    return [*keys, network, *_firewalls(inventory, labels), group, *hosts,
            *_load_balancer(inventory, labels)]  # fmt: skip
