"""The full-disk-encryption lab: one qemu VM behind the Hetzner API stand-in, installed and
unlocked exactly as production is (used by tests/infra/test_fde.py and benchmarks/fde.py)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hcloud import Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType

from infra import inventory
from infra.fde.install import Installer, Kdf
from infra.fde.qemu_backend import QemuBackend
from infra.fde.unlock import unlock
from infra.inventory import INVENTORIES, REPO, Host, Inventory
from infra.standins.hetzner import running

NAME = "cloop-lab-fde-1"
TASKS = REPO / "infra" / "deploy" / "tasks"
KERNEL_TASKS = ("sysctl", "modules")
# Emulated CPUs derive keys ~20x slower; the cost is a parameter, the format is production's.
LAB_KDF = Kdf(iter_time_ms=200, memory_kib=65536)


@dataclass
class FdeLab:
    """The installed VM and what the operator holds: passphrase, key, pinned host keys."""

    client: Client
    backend: QemuBackend
    inventory: Inventory
    host: Host
    state: Path
    identity: Path
    passphrase: str
    out: Callable[[str], None]
    timings: dict[str, float] = field(default_factory=dict)

    def installer(self) -> Installer:
        return Installer(self.client, self.inventory, self.host, self.state, self.out,
                         kdf=LAB_KDF, kernel_cmdline="console=ttyS0,115200")  # fmt: skip

    def unlock(self, passphrase: str | None = None) -> dict[str, float]:
        return unlock(self.host, passphrase or self.passphrase, self.state, self.identity)

    def ssh_config(self) -> Path:
        """An OpenSSH config naming the system `vm`, pinned to the host key made at install."""
        config = self.state / "ssh_config"
        config.write_text(
            f"Host vm\n  HostName {self.host.ssh_hostname}\n  Port {self.host.ssh_port}\n"
            f"  User root\n  IdentityFile {self.identity}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.state / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        )
        return config


def _operator_key(directory: Path) -> Path:
    directory.mkdir()
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def _server(client: Client, backend: QemuBackend, key_text: str) -> Host:
    """Create the server through the API, as provisioning does; return its address."""
    key = client.ssh_keys.create(name="cloop-lab-operator", public_key=key_text)
    created = client.servers.create(
        NAME,
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-13"),
        ssh_keys=[key],
        location=Location(name="hel1"),
    )
    public = created.server.public_net
    if public is None or public.ipv4 is None:
        raise RuntimeError("the stand-in returned a server without a public IPv4")
    return Host(name=NAME, roles=frozenset({"app"}), ssh_hostname=public.ipv4.ip,
                ssh_port=backend.ssh_port(NAME))  # fmt: skip


def deploy_kernel_settings(lab: FdeLab, log: Path) -> None:
    """Run the base deploy's kernel tasks (sysctl, modules) on the VM, with pyinfra as the
    deploy does, so the checks the container lab waives can be made on a real kernel."""
    data = {
        "ssh_hostname": lab.host.ssh_hostname,
        "ssh_port": lab.host.ssh_port,
        "ssh_user": "root",
        "ssh_key": str(lab.identity),
        "ssh_known_hosts_file": str(lab.state / "known_hosts"),
    }
    hosts = lab.state / "inventory.py"
    hosts.write_text(f"debian13 = [({lab.host.name!r}, {data!r})]\n")
    tasks = [str(TASKS / f"{task}.py") for task in KERNEL_TASKS]
    cmd = [sys.executable, "-m", "pyinfra", str(hosts), *tasks, "--group-data",
           str(INVENTORIES / "group_data"), "-y"]  # fmt: skip
    with log.open("w") as out:
        result = subprocess.run(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pyinfra failed on the VM (exit {result.returncode}); see {log}")


@contextmanager
def installed(work: Path, out: Callable[[str], None] = print) -> Iterator[FdeLab]:
    """A server created, installed with full-disk encryption and unlocked; stopped on exit."""
    identity = _operator_key(work / "keys")
    token = secrets.token_urlsafe(32)
    backend = QemuBackend(work / "vms")
    try:
        with running(token, backend) as (endpoint, _state):
            client = Client(token, api_endpoint=endpoint, poll_interval=0.05)
            host = _server(client, backend, identity.with_suffix(".pub").read_text())
            inv = inventory.load("lab").with_data(ssh_keys={"operator": f"{identity}.pub"})
            state = work / "operator"
            state.mkdir()
            lab = FdeLab(client, backend, inv.model_copy(update={"hosts": [host]}), host,
                         state, identity, secrets.token_urlsafe(18), out)  # fmt: skip
            lab.timings = lab.installer().run(lab.passphrase)
            lab.timings |= lab.unlock()
            yield lab
    finally:
        backend.close()
