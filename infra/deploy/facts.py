"""Facts the base deploy reads that pyinfra does not ship."""

from __future__ import annotations

from pyinfra.api.facts import FactBase


class WritableSysctls(FactBase[list[str]]):
    """
    The sysctl keys among `keys` this host lets us change now.

    A container shares the host's kernel: only per-network-namespace keys are writable there,
    so the others are persisted for the next boot of a real machine but not applied live.

    .. code:: python

        ["net.ipv4.ip_forward", "net.ipv4.tcp_syncookies"]
    """

    default = list

    def command(self, keys: list[str]) -> str:
        paths = " ".join(k.replace(".", "/") for k in keys)
        return f"for k in {paths}; do test -w /proc/sys/$k && echo $k; done; true"

    def process(self, output: list[str]) -> list[str]:
        return [line.strip().replace("/", ".") for line in output if line.strip()]


class Virtualization(FactBase[str]):
    """
    What the host runs in according to systemd (`none` on bare metal and full VMs seen as such).

    .. code:: python

        "systemd-nspawn"
    """

    def command(self) -> str:
        return "systemd-detect-virt --container || true"

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else "none"
