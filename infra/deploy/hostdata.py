"""What a host gets, derived from the inventory data: one place for the deploy and the checks.

The environment of a host follows from its name (`cloop-prod-*`, `cloop-lab-*`: names are
validated against the environments' prefixes), so inventories stay lists of names. The egress
allow-list comes from `infra.inventory.egress_allowlist` (the subprocessor data, SUB-1) plus
DNS and the metadata service; names are resolved on the operator's machine unless the data maps
them statically (the lab maps subprocessors to its stand-ins).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.inventory import (
    ROLES,
    Environment,
    Inventory,
    InventoryError,
    egress_allowlist,
    load,
    load_group_data,
)

METADATA_IP = "169.254.169.254"
ALERTS = "operator alerts (OPS-2; our own endpoint, not a subprocessor)"
ALERT_TOKEN = "monitoring_webhook_token"  # noqa: S105 - the name of the alert endpoint's token


@dataclass(frozen=True, order=True)
class Egress:
    """One allowed destination: protocol, address, port and why."""

    protocol: str
    address: str
    port: int
    purpose: str = ""

    @property
    def family(self) -> str:
        return "ip6" if ipaddress.ip_address(self.address).version == 6 else "ip"


def environment_name(host_name: str) -> str:
    """The environment whose prefix the host's name carries."""
    for name, env in load_group_data().environments.items():
        if host_name.startswith(env.prefix + "-"):
            return name
    raise InventoryError(f"host {host_name}: its name matches no environment prefix")


def environment(host_name: str) -> Environment:
    return load_group_data().environments[environment_name(host_name)]


def inventory_of(host_name: str) -> Inventory:
    return load(environment_name(host_name))


def roles_of(groups: list[str] | set[str]) -> frozenset[str]:
    return frozenset(g for g in groups if g in ROLES)


def apt_mirror(host_name: str, data: Mapping[str, Any]) -> str:
    """The environment's mirror, unless the lab overrides it with its running mirror."""
    return str(data.get("apt_mirror_override") or environment(host_name).apt_mirror)


def apt_security_mirror(host_name: str, data: Mapping[str, Any]) -> str:
    if data.get("apt_security_mirror_override"):
        return str(data["apt_security_mirror_override"])
    mirror = environment(host_name).apt_mirror
    known: dict[str, str] = data.get("apt_security_mirrors", {})
    if mirror not in known:
        raise InventoryError(f"no security mirror known for {mirror} (debian13.py)")
    return known[mirror]


def resolve(name: str, static: Mapping[str, str]) -> list[str]:
    """Addresses of a name: the static map first, else DNS on the operator's machine."""
    if name in static:
        return [static[name]]
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return [name]
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise InventoryError(f"egress allow-list: cannot resolve {name}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def egress(host_name: str, groups: list[str] | set[str], data: Mapping[str, Any]) -> list[Egress]:
    """Every destination this host may open a connection to (its egress allow-list)."""
    inventory = inventory_of(host_name)
    mirror = apt_mirror(host_name, data)
    if mirror != inventory.env.apt_mirror:
        envs = inventory.data.model_dump()["environments"]
        envs[inventory.name]["apt_mirror"] = mirror
        inventory = inventory.with_data(environments=envs)
    static: Mapping[str, str] = data.get("static_hosts", {})
    allowed = {
        Egress(ep.protocol, address, ep.port, ep.purpose)
        for ep in egress_allowlist(inventory, roles_of(groups))
        for address in resolve(ep.host, static)
    }
    for resolver in data.get("dns_resolvers", []):
        allowed |= {Egress(p, resolver, 53, "DNS") for p in ("udp", "tcp")}
    allowed.add(Egress("tcp", METADATA_IP, 80, "Hetzner metadata service"))
    # the lab's stand-ins listen on ephemeral ports behind the gateway (infra/lab/lab.py)
    allowed |= {
        Egress("tcp", e["address"], e["port"], e["purpose"]) for e in data.get("egress_extra", [])
    }
    allowed |= alert_egress(data, static)
    return sorted(allowed)


def s3_keys(data: Mapping[str, Any]) -> tuple[str, str]:
    """The object-storage key pair: the operator's environment (as for `cloop-ops buckets`),
    unless the lab names its stand-in's."""
    return (
        str(data.get("s3_access_key_override") or os.environ.get("S3_ACCESS_KEY", "")),
        str(data.get("s3_secret_key_override") or os.environ.get("S3_SECRET_KEY", "")),
    )


def app_ip_allow(
    host_name: str, groups: list[str] | set[str], data: Mapping[str, Any]
) -> list[str]:
    """Where the app's processes may connect (systemd IPAddressAllow): the private network and
    the host's egress allow-list."""
    private = inventory_of(host_name).data.private_network.ip_range
    return ["localhost", private, *sorted({e.address for e in egress(host_name, groups, data)})]


def alert_webhook(data: Mapping[str, Any]) -> str:
    """Where the host's alerts go (OPS-2): the operator's paging endpoint, or the lab's."""
    return str(data.get("monitoring_webhook_override") or data["monitoring"]["webhook_url"])


def alert_egress(data: Mapping[str, Any], static: Mapping[str, str]) -> set[Egress]:
    hook = urlsplit(alert_webhook(data))
    port = hook.port or (443 if hook.scheme == "https" else 80)
    return {Egress("tcp", a, port, ALERTS) for a in resolve(hook.hostname or "", static)}


def ntp_servers(host_name: str, groups: list[str] | set[str]) -> list[str]:
    """Time servers: the allow-listed endpoints on the NTP port."""
    inventory = inventory_of(host_name)
    endpoints = egress_allowlist(inventory, roles_of(groups))
    return [ep.host for ep in endpoints if ep.port == 123 and ep.protocol == "udp"]


def operator_keys(data: Mapping[str, Any]) -> list[str]:
    """The operators' public keys (files named in group_data/all.py `ssh_keys`, or the lab's)."""
    if data.get("operator_public_keys"):
        return list(data["operator_public_keys"])
    keys = []
    for name, path in data["ssh_keys"].items():
        file = Path(path).expanduser()
        if not file.is_file():
            raise InventoryError(f"ssh_keys.{name}: no public key file {file}")
        keys.append(file.read_text().strip())
    return keys
