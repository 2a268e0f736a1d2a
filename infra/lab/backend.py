"""The Hetzner stand-in's lab backend: a created server is a booted nspawn container.

So `lab up` provisions through the same hcloud calls as production, and the stand-in answers
with an address where a real Debian 13 host accepts SSH (on loopback, one port per host).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from infra.lab import machine
from infra.standins.backends import PublicAddress

IMAGE = "debian-13"


@dataclass
class LabBackend:
    """Boots lab hosts for servers created in `location` (its metadata tells the same)."""

    location: str
    network_zone: str
    subnet: str
    keys: dict[str, list[str]] = field(default_factory=dict)
    private: dict[str, list[str]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def _zone(self) -> dict[str, str]:
        return {
            "availability_zone": f"{self.location}-dc2",
            "region": self.network_zone,
            "prefixlen": str(ipaddress.ip_network(self.subnet).prefixlen),
        }

    def create_server(
        self,
        name: str,
        image: str,
        ssh_keys: list[str],
        user_data: str | None,
        private_ips: list[str],
    ) -> PublicAddress:
        if image != IMAGE:
            raise machine.LabError(f"[{name}] create: the lab has only the {IMAGE} image")
        if not private_ips:
            raise machine.LabError(f"[{name}] create: a lab host needs a private network address")
        self.keys[name], self.private[name] = ssh_keys, private_ips
        self.ports[name] = machine.boot(name, ssh_keys, private_ips, self._zone())
        return PublicAddress(
            ipv4="127.0.0.1", ipv6_network="fd00:c100::/64", ssh_port=self.ports[name]
        )

    def delete_server(self, name: str) -> None:
        machine.destroy(name)
        self.ports.pop(name, None)

    def power_off(self, name: str) -> None:
        machine.power_off(name)

    def power_on(self, name: str) -> None:
        machine.power_on(name)

    def reset(self, name: str) -> None:
        machine.power_off(name)
        machine.power_on(name)

    def enable_rescue(self, name: str, ssh_keys: list[str]) -> None:
        raise machine.LabError(
            f"[{name}] rescue: lab containers have no rescue system (the fde lab's VM has)"
        )

    def rebuild(self, name: str, image: str) -> None:
        """A fresh disk from the image; the host keeps its address (its SSH port)."""
        if image != IMAGE:
            raise machine.LabError(f"[{name}] rebuild: the lab has only the {IMAGE} image")
        port = self.ports[name]
        machine.destroy(name)
        machine.boot(name, self.keys[name], self.private[name], self._zone(), port)
