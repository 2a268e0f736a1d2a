"""What happens to a machine when the Hetzner API stand-in creates or acts on a server.

The stand-in answers the real API; a backend decides what a "server" is: nothing at all
(`RecordingBackend`, for provisioning tests), an nspawn container (the lab) or a qemu VM
(the full-disk-encryption lab). Calls are synchronous: the stand-in's actions complete at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PublicAddress:
    """Where a created server is reached: its public IPv4/IPv6 and the port SSH answers on."""

    ipv4: str
    ipv6_network: str
    ssh_port: int = 22


class ServerBackend(Protocol):
    """The machine behind a server of the stand-in. Names are the servers' (unique) names."""

    def create_server(
        self,
        name: str,
        image: str,
        ssh_keys: list[str],
        user_data: str | None,
        private_ips: list[str],
    ) -> PublicAddress:
        """Boot a machine from `image` with these public keys for root; return its address."""
        ...

    def delete_server(self, name: str) -> None:
        """Destroy the machine and everything on its disk."""
        ...

    def power_on(self, name: str) -> None: ...

    def power_off(self, name: str) -> None:
        """Cut the power (no clean shutdown)."""
        ...

    def reset(self, name: str) -> None:
        """Hard reset: power off then on, booting rescue if it is enabled."""
        ...

    def enable_rescue(self, name: str, ssh_keys: list[str]) -> None:
        """Boot the rescue system with these keys at the next reset (Hetzner semantics)."""
        ...

    def rebuild(self, name: str, image: str) -> None:
        """Wipe the disk and install `image` afresh, keeping the address."""
        ...


@dataclass
class RecordingBackend:
    """Boots nothing: records every call and hands out documentation-range addresses."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    _next: int = 1

    def create_server(
        self,
        name: str,
        image: str,
        ssh_keys: list[str],
        user_data: str | None,
        private_ips: list[str],
    ) -> PublicAddress:
        self.calls.append(("create_server", name))
        n, self._next = self._next, self._next + 1
        return PublicAddress(ipv4=f"203.0.113.{n}", ipv6_network=f"2001:db8:{n:x}::/64")

    def delete_server(self, name: str) -> None:
        self.calls.append(("delete_server", name))

    def power_on(self, name: str) -> None:
        self.calls.append(("power_on", name))

    def power_off(self, name: str) -> None:
        self.calls.append(("power_off", name))

    def reset(self, name: str) -> None:
        self.calls.append(("reset", name))

    def enable_rescue(self, name: str, ssh_keys: list[str]) -> None:
        self.calls.append(("enable_rescue", name))

    def rebuild(self, name: str, image: str) -> None:
        self.calls.append(("rebuild", name))
