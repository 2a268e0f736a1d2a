"""nftables rule text from the inventory data (kept apart from the task so tests can read it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from infra.deploy.hostdata import Egress

ICMP_TYPES = "echo-request, destination-unreachable, time-exceeded, parameter-problem"
ICMP6_TYPES = "echo-request, destination-unreachable, time-exceeded, parameter-problem"


def _public_rule(rule: Mapping[str, Any]) -> list[str]:
    comment = f'comment "{rule["description"]}"'
    if rule["protocol"] == "icmp":
        return [
            f"ip protocol icmp icmp type {{ {ICMP_TYPES} }} limit rate 10/second accept {comment}",
            f"meta l4proto ipv6-icmp icmpv6 type {{ {ICMP6_TYPES} }} limit rate 10/second accept",
        ]
    return [f"{rule['protocol']} dport {rule['port']} accept {comment}"]


def ingress_rules(
    public: Mapping[str, list[Mapping[str, Any]]],
    groups: Iterable[str],
    private: Mapping[str, list[Mapping[str, Any]]],
    peers: Mapping[str, list[str]],
    interface: str,
) -> list[str]:
    """Accept rules for this host's groups: public services, then private-network services."""
    mine = set(groups)
    rules = [
        line for g in sorted(mine & set(public)) for r in public[g] for line in _public_rule(r)
    ]
    for group in sorted(mine & set(private)):
        for rule in private[group]:
            sources = sorted({ip for role in rule["from_roles"] for ip in peers.get(role, [])})
            if sources:
                rules.append(
                    f'iifname "{interface}" ip saddr {{ {", ".join(sources)} }} '
                    f'tcp dport {rule["port"]} accept comment "{rule["description"]}"'
                )
    return rules


def private_egress_rules(
    groups: Iterable[str],
    private: Mapping[str, list[Mapping[str, Any]]],
    peers: Mapping[str, list[str]],
    interface: str,
) -> list[str]:
    """The other side of private ingress: this host may reach the services its roles use."""
    mine = set(groups)
    rules = []
    for target, entries in sorted(private.items()):
        for rule in entries:
            dests = sorted(peers.get(target, [])) if mine & set(rule["from_roles"]) else []
            if dests:
                rules.append(
                    f'oifname "{interface}" ip daddr {{ {", ".join(dests)} }} '
                    f'tcp dport {rule["port"]} accept comment "{rule["description"]}"'
                )
    return rules


def egress_elements(allowed: Iterable[Egress]) -> dict[str, list[str]]:
    """Set elements (`address . port`) per protocol and address family."""
    sets: dict[str, list[str]] = {"tcp4": [], "udp4": [], "tcp6": [], "udp6": []}
    for item in allowed:
        family = "6" if item.family == "ip6" else "4"
        sets[item.protocol + family].append(f"{item.address} . {item.port}")
    return sets
