"""A qemu VM behind the Hetzner API stand-in: the lab's stand-in for a cloud server.

Only a real kernel shows a LUKS root, an initramfs and a remote unlock, so the
full-disk-encryption lab runs one qemu VM (TCG: this machine has no usable hardware
virtualisation). Like a Hetzner server it has one disk on virtio-scsi (`/dev/sda`) and one
NIC whose gateway is 172.31.1.1; `enable_rescue` + `reset` boots a Debian rescue system
(kernel and initrd loaded directly, root on a snapshotted disk) with the given keys, and a
plain `reset` boots the disk through the BIOS and the GRUB the installer put there.

Differences from Hetzner, on purpose: a new server's disk is empty (no stock image; the
installer wipes it anyway), `create_server` does not boot it, and the address the operator
connects to is a forwarded loopback port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from infra.fde.image import RescueImage, rescue_image
from infra.standins.backends import PublicAddress

GUEST_NET = "net=172.31.1.0/24,host=172.31.1.1,dhcpstart=172.31.1.100"


class BackendError(Exception):
    """The VM could not be started or found; the message says why."""


def free_port() -> int:
    """An unused loopback port for qemu's SSH forward (qemu cannot report one it picked)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Machine:
    name: str
    disk: Path
    ssh_port: int
    rescue_keys: list[str] | None = None
    process: subprocess.Popen[bytes] | None = None


@dataclass
class QemuBackend:
    """`ServerBackend` with one qemu VM per server; files under `state_dir`."""

    state_dir: Path
    disk_gib: int = 8
    memory_mib: int = 2048
    cpus: int = 1  # one emulated CPU: the host is shared, and vCPUs starve each other under load
    rescue: RescueImage | None = None
    _machines: dict[str, _Machine] = field(default_factory=dict)

    def create_server(
        self,
        name: str,
        image: str,
        ssh_keys: list[str],
        user_data: str | None,
        private_ips: list[str],
    ) -> PublicAddress:
        """An empty disk and a reserved SSH port; the VM first boots at `reset`/`power_on`."""
        if name in self._machines:
            raise BackendError(f"server {name} exists already")
        directory = self.state_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        disk = directory / "disk.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(disk), f"{self.disk_gib}G"],
            check=True,
        )
        machine = _Machine(name=name, disk=disk, ssh_port=free_port())
        self._machines[name] = machine
        return PublicAddress(
            ipv4="127.0.0.1", ipv6_network="2001:db8::/64", ssh_port=machine.ssh_port
        )

    def delete_server(self, name: str) -> None:
        machine = self._machine(name)
        self._stop(machine)
        machine.disk.unlink(missing_ok=True)
        del self._machines[name]

    def power_on(self, name: str) -> None:
        machine = self._machine(name)
        if machine.process is None or machine.process.poll() is not None:
            self._start(machine)

    def power_off(self, name: str) -> None:
        self._stop(self._machine(name))

    def reset(self, name: str) -> None:
        machine = self._machine(name)
        self._stop(machine)
        self._start(machine)

    def enable_rescue(self, name: str, ssh_keys: list[str]) -> None:
        self._machine(name).rescue_keys = list(ssh_keys)

    def rebuild(self, name: str, image: str) -> None:
        machine = self._machine(name)
        self._stop(machine)
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(machine.disk), f"{self.disk_gib}G"],
            check=True,
        )

    def close(self) -> None:
        """Stop every VM this backend started (fixture teardown)."""
        for machine in self._machines.values():
            self._stop(machine)

    def ssh_port(self, name: str) -> int:
        """The loopback port forwarded to the server's port 22."""
        return self._machine(name).ssh_port

    def disk_path(self, name: str) -> Path:
        """The server's disk image, for looking at what is stored on it from outside."""
        return self._machine(name).disk

    def console_log(self, name: str) -> Path:
        """The serial console of every boot of this server, appended in order."""
        return self.state_dir / name / "console.log"

    def _machine(self, name: str) -> _Machine:
        try:
            return self._machines[name]
        except KeyError:
            raise BackendError(f"no server {name}") from None

    def _start(self, machine: _Machine) -> None:
        """Boot rescue once if it was enabled (then forget it, as Hetzner does), else the disk."""
        args = self._base_args(machine)
        if machine.rescue_keys is not None:
            args += self._rescue_args(machine, machine.rescue_keys)
            machine.rescue_keys = None
        log = (self.state_dir / machine.name / "qemu.log").open("ab")
        machine.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )

    def _base_args(self, machine: _Machine) -> list[str]:
        forward = f"hostfwd=tcp:127.0.0.1:{machine.ssh_port}-:22"
        return [
            "qemu-system-x86_64",
            "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
            "-smp", str(self.cpus), "-m", str(self.memory_mib),
            "-display", "none", "-monitor", "none",
            "-serial", f"file:{self.console_log(machine.name)}.part",
            "-device", "virtio-scsi-pci,id=scsi",
            "-drive", f"file={machine.disk},if=none,id=disk,format=qcow2,cache=unsafe",
            "-device", "scsi-hd,drive=disk,bus=scsi.0,bootindex=1",
            "-netdev", f"user,id=net0,{GUEST_NET},{forward}",
            "-device", "virtio-net-pci,netdev=net0",
        ]  # fmt: skip

    def _rescue_args(self, machine: _Machine, keys: list[str]) -> list[str]:
        image = self.rescue or rescue_image()
        key_file = self.state_dir / machine.name / "rescue_keys"
        key_file.write_text("".join(f"{key.strip()}\n" for key in keys))
        return [
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", "root=/dev/vda rw console=ttyS0 ip=off",
            "-drive", f"file={image.disk},if=virtio,format=raw,snapshot=on",
            "-fw_cfg", f"name=opt/cloop/authorized_keys,file={key_file}",
        ]  # fmt: skip

    def _stop(self, machine: _Machine) -> None:
        """Cut the power: kill qemu and keep what the serial console printed."""
        process, machine.process = machine.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        part = Path(f"{self.console_log(machine.name)}.part")
        if part.exists():
            with self.console_log(machine.name).open("ab") as log:
                log.write(part.read_bytes())
            part.unlink()
