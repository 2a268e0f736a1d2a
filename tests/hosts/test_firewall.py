"""Firewall (OPS-1) and egress (SUB-1, RES-5): ingress default-deny; egress only to the
subprocessors' endpoints (plus DNS, the metadata service and the package mirror)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from infra.deploy.hostdata import ALERTS, apt_mirror, egress
from infra.inventory import subprocessor_of
from tests.hosts.conftest import inventory

CONNECT = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)"
INFRASTRUCTURE = {"DNS", "Hetzner metadata service", ALERTS}


def ruleset(host: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(host.check_output("nft -j list ruleset"))["nftables"]
    return items


def chain_policy(host: Any, name: str) -> str:
    chains = [i["chain"] for i in ruleset(host) if "chain" in i and i["chain"]["table"] == "cloop"]
    return str(next(c for c in chains if c["name"] == name)["policy"])


def set_elements(host: Any) -> set[tuple[str, str, int]]:
    found = set()
    for item in ruleset(host):
        if "set" in item and item["set"]["name"].startswith("egress_"):
            proto = item["set"]["name"].removeprefix("egress_")[:3]
            for element in item["set"].get("elem", []):
                address, port = element["concat"]
                found.add((proto, address, int(port)))
    return found


@pytest.mark.claim("OPS-1")
@pytest.mark.parametrize(
    ("chain", "policy"), [("input", "drop"), ("forward", "drop"), ("output", "drop")]
)
def test_default_deny(host: Any, chain: str, policy: str) -> None:
    assert chain_policy(host, chain) == policy


@pytest.mark.claim("OPS-1")
def test_nftables_enabled_for_boot(host: Any) -> None:
    assert host.service("nftables").is_enabled
    assert host.run("nft -c -f /etc/nftables.conf").rc == 0


@pytest.mark.claim("OPS-1")
def test_ingress_only_declared_ports(host: Any, roles: frozenset[str]) -> None:
    public = inventory().data.ingress
    wanted = {int(r.port) for g in ("debian13", *roles) for r in public.get(g, []) if r.port}
    out = host.check_output("nft list chain inet cloop input")
    opened = {int(line.split("dport ")[1].split()[0]) for line in out.splitlines()
              if "dport" in line and "saddr" not in line}  # fmt: skip
    assert opened == wanted


@pytest.mark.claim("SUB-1", "RES-5")
def test_egress_allow_list_is_the_inventorys(
    host: Any, host_name: str, roles: frozenset[str], data: dict[str, Any]
) -> None:
    expected = {
        (e.protocol, e.address, e.port) for e in egress(host_name, {*roles, "debian13"}, data)
    }
    assert set_elements(host) == expected


@pytest.mark.claim("SUB-1")
def test_egress_goes_only_to_subprocessors(
    host_name: str, roles: frozenset[str], data: dict[str, Any]
) -> None:
    """Each allowed destination is a subprocessor's endpoint, or DNS / metadata / the mirror."""
    inv = inventory()
    mirror = apt_mirror(host_name, data)
    names = {sp.name for sp in inv.data.subprocessors}
    assert names == {"Hetzner Online GmbH", "Nebius B.V.", "Let's Encrypt (ISRG)"}
    endpoints = {ep.purpose: sp.name for sp in inv.data.subprocessors for ep in sp.endpoints}
    for item in egress(host_name, {*roles, "debian13"}, data):
        assert (
            item.purpose in INFRASTRUCTURE
            or endpoints.get(item.purpose) in names
            or (item.purpose.startswith("package mirror") and item.address in mirror)
        ), item
    assert all(
        subprocessor_of(inv, ep.host) for sp in inv.data.subprocessors for ep in sp.endpoints
    )


@pytest.mark.claim("RES-5", "OPS-1")
def test_egress_blocked(host: Any, blocked_probe: str, data: dict[str, Any]) -> None:
    """Outside the allow-list nothing answers, though the probe listens (checked from here)."""
    address, port = blocked_probe.rsplit(":", 1)
    operator_view = data.get("egress_probe_operator_view", {}).get(blocked_probe)
    if operator_view:
        local, local_port = operator_view.rsplit(":", 1)
        socket.create_connection((local, int(local_port)), 5).close()  # the probe is up
    result = host.run(f'python3 -c "{CONNECT}" {address} {port}')
    assert result.rc != 0
    # rejected by the egress chain (EHOSTUNREACH), or dropped on the way (timeout)
    assert "No route to host" in result.stderr or "timed out" in result.stderr, result.stderr


@pytest.mark.claim("RES-5", "OPS-1")
def test_egress_allowed_mirror(host: Any, host_name: str, data: dict[str, Any]) -> None:
    url = f"{apt_mirror(host_name, data)}/dists/{data['apt_suite']}/Release"
    script = f"import urllib.request as u; print(u.urlopen('{url}', timeout=20).status)"
    assert host.check_output(f'python3 -c "{script}"') == "200"
