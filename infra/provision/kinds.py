"""How each kind of Hetzner resource is observed, created and corrected through `hcloud`.

`observe` reduces what the API reports to the keys of `Desired.spec` (plus labels), so a plan
is a plain comparison. Keys listed in `FIXABLE` are corrected in place (labels, firewall rules
and targets, protection); any other difference is a conflict that needs a human.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hcloud import Client
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.images import Image
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerHealthCheck,
    LoadBalancerService,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.networks import NetworkSubnet
from hcloud.server_types import ServerType
from hcloud.servers import ServerCreatePublicNetwork

from infra.provision.desired import Desired

Bound = Any  # hcloud's Bound* models (untyped library)
Refs = dict[tuple[str, str], Bound]

COLLECTION = {
    "ssh_key": "ssh_keys",
    "network": "networks",
    "firewall": "firewalls",
    "placement_group": "placement_groups",
    "primary_ip": "primary_ips",
    "volume": "volumes",
    "server": "servers",
    "load_balancer": "load_balancers",
}
FIXABLE = {"labels", "protection", "rules", "apply_to", "auto_delete"}
NOT_COMPARED = {"public_key_file", "image"}


class PlanError(Exception):
    """The desired state cannot be computed (e.g. an SSH public key file is missing)."""


def expected(d: Desired) -> dict[str, Any]:
    """The desired values to compare with `observe`."""
    values = {k: v for k, v in d.spec.items() if k not in NOT_COMPARED}
    if d.kind == "ssh_key":
        values["public_key"] = _public_key(d.spec["public_key_file"], d.name)
    return values | {"labels": d.labels}


def _public_key(path: str, name: str) -> str:
    file = Path(path).expanduser()
    try:
        text = file.read_text().strip()
    except OSError as exc:
        raise PlanError(f"ssh key {name}: cannot read {file}: {exc.strerror}") from None
    if len(text.split()) < 2 or not text.startswith(("ssh-", "ecdsa-")):
        raise PlanError(f"ssh key {name}: {file} is not an OpenSSH public key")
    return text


def _protection(bound: Bound, keys: tuple[str, ...] = ("delete",)) -> dict[str, bool]:
    return {k: bool(bound.protection[k]) for k in keys}


def _rule(rule: Any) -> dict[str, Any]:
    return {
        "direction": rule.direction,
        "protocol": rule.protocol,
        "port": rule.port,
        "source_ips": list(rule.source_ips),
        "destination_ips": list(rule.destination_ips),
        "description": rule.description,
    }


def observe(kind: str, bound: Bound) -> dict[str, Any]:
    """The resource as the API reports it, in the shape of `expected`."""
    seen: dict[str, Any] = {"labels": dict(bound.labels or {})}
    if kind == "ssh_key":
        seen["public_key"] = bound.public_key.strip()
    elif kind == "network":
        seen["ip_range"] = bound.ip_range
        seen["subnets"] = [s.ip_range for s in bound.subnets]
        seen["network_zone"] = bound.subnets[0].network_zone if bound.subnets else None
        seen["protection"] = _protection(bound)
    elif kind == "firewall":
        seen["rules"] = [_rule(r) for r in bound.rules]
        seen["apply_to"] = [a.label_selector.selector for a in bound.applied_to if a.label_selector]
    elif kind == "placement_group":
        seen["type"] = bound.type
    else:
        seen |= _observe_located(kind, bound)
    return seen


def _observe_located(kind: str, bound: Bound) -> dict[str, Any]:
    seen: dict[str, Any] = {"location": bound.location.name, "protection": _protection(bound)}
    if kind == "primary_ip":
        seen |= {"type": bound.type, "auto_delete": bound.auto_delete}
    elif kind == "volume":
        seen["size"] = bound.size
    elif kind == "server":
        seen["server_type"] = bound.server_type.name
        seen["protection"] = _protection(bound, ("delete", "rebuild"))
        seen["placement_group"] = bound.placement_group and bound.placement_group.name
    elif kind == "load_balancer":
        seen["load_balancer_type"] = bound.load_balancer_type.name
        seen["services"] = [
            {"listen_port": s.listen_port, "destination_port": s.destination_port}
            for s in bound.services
        ]
        seen["targets"] = [t.label_selector.selector for t in bound.targets if t.label_selector]
    return seen


def _selector(selector: str) -> FirewallResource:
    return FirewallResource(
        type="label_selector", label_selector=FirewallResourceLabelSelector(selector=selector)
    )


def _wait(*actions: Any) -> None:
    for action in actions:
        if action is not None:
            action.wait_until_finished()


def _location(d: Desired) -> Location | None:
    return Location(name=d.location) if d.location else None


def _create_ssh_key(client: Client, d: Desired, _refs: Refs) -> Bound:
    key = _public_key(d.spec["public_key_file"], d.name)
    return client.ssh_keys.create(name=d.name, public_key=key, labels=d.labels)


def _create_network(client: Client, d: Desired, _refs: Refs) -> Bound:
    zone = d.spec["network_zone"]
    subnets = [
        NetworkSubnet(type="cloud", ip_range=s, network_zone=zone) for s in d.spec["subnets"]
    ]
    return client.networks.create(
        name=d.name, ip_range=d.spec["ip_range"], subnets=subnets, labels=d.labels
    )


def _create_firewall(client: Client, d: Desired, _refs: Refs) -> Bound:
    rules = [FirewallRule(**r) for r in d.spec["rules"]]
    resources = [_selector(s) for s in d.spec["apply_to"]]
    made = client.firewalls.create(d.name, rules=rules, labels=d.labels, resources=resources)  # type: ignore[arg-type]
    _wait(*(made.actions or []))
    return made.firewall


def _create_placement_group(client: Client, d: Desired, _refs: Refs) -> Bound:
    return client.placement_groups.create(d.name, d.spec["type"], labels=d.labels).placement_group


def _create_primary_ip(client: Client, d: Desired, _refs: Refs) -> Bound:
    made = client.primary_ips.create(
        type=d.spec["type"], name=d.name, location=_location(d), assignee_type="server",
        auto_delete=d.spec["auto_delete"], labels=d.labels,
    )  # fmt: skip
    _wait(made.action)
    return made.primary_ip


def _create_volume(client: Client, d: Desired, _refs: Refs) -> Bound:
    made = client.volumes.create(d.spec["size"], d.name, labels=d.labels, location=_location(d))  # type: ignore[arg-type]
    _wait(made.action, *(made.next_actions or []))
    return made.volume


def _create_server(client: Client, d: Desired, refs: Refs) -> Bound:
    def ref(kind: str) -> list[Bound]:
        return [refs[r] for r in d.refs if r[0] == kind]

    ipv4, ipv6 = ref("primary_ip")
    made = client.servers.create(
        d.name,
        server_type=ServerType(name=d.spec["server_type"]),
        image=Image(name=d.spec["image"]),
        ssh_keys=ref("ssh_key"),
        volumes=ref("volume"),
        networks=ref("network"),
        labels=d.labels,
        location=_location(d),
        automount=False,
        placement_group=ref("placement_group")[0],
        public_net=ServerCreatePublicNetwork(ipv4=ipv4, ipv6=ipv6),
    )
    _wait(made.action, *made.next_actions)
    return made.server


def _create_load_balancer(client: Client, d: Desired, refs: Refs) -> Bound:
    services = [
        LoadBalancerService(
            protocol="tcp",
            listen_port=s["listen_port"],
            destination_port=s["destination_port"],
            proxyprotocol=False,
            health_check=LoadBalancerHealthCheck(
                protocol="tcp", port=s["destination_port"], interval=15, timeout=10, retries=3
            ),
        )
        for s in d.spec["services"]
    ]
    targets = [
        LoadBalancerTarget(type="label_selector", use_private_ip=True,
                           label_selector=LoadBalancerTargetLabelSelector(selector=s))
        for s in d.spec["targets"]
    ]  # fmt: skip
    made = client.load_balancers.create(
        d.name,
        load_balancer_type=LoadBalancerType(name=d.spec["load_balancer_type"]),
        location=_location(d),
        network=refs[("network", d.refs[0][1])],
        labels=d.labels,
        services=services,
        targets=targets,
    )
    _wait(made.action)
    return made.load_balancer


CREATE: dict[str, Callable[[Client, Desired, Refs], Bound]] = {
    "ssh_key": _create_ssh_key,
    "network": _create_network,
    "firewall": _create_firewall,
    "placement_group": _create_placement_group,
    "primary_ip": _create_primary_ip,
    "volume": _create_volume,
    "server": _create_server,
    "load_balancer": _create_load_balancer,
}


def create(client: Client, d: Desired, refs: Refs) -> Bound:
    """Create the resource (protection and other fixable keys are set afterwards by `fix`)."""
    return CREATE[d.kind](client, d, refs)


def fix(client: Client, kind: str, bound: Bound, key: str, *, want: Any, seen: Any) -> None:
    """Correct one drifted key in place."""
    if key == "labels":
        bound.update(labels=want)
    elif key == "protection":
        _wait(bound.change_protection(**want))
    elif key == "auto_delete":
        bound.update(auto_delete=want)
    elif key == "rules":
        _wait(*client.firewalls.set_rules(bound, [FirewallRule(**r) for r in want]))
    elif key == "apply_to":
        extra = [_selector(s) for s in seen if s not in want]
        missing = [_selector(s) for s in want if s not in seen]
        if extra:
            _wait(*client.firewalls.remove_from_resources(bound, extra))
        if missing:
            _wait(*client.firewalls.apply_to_resources(bound, missing))
    else:
        raise PlanError(f"{kind} {bound.name}: {key} cannot be changed in place")
