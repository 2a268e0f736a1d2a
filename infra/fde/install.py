"""`cloop-ops install-fde`: reinstall a server from Hetzner's rescue system onto LUKS2 + LVM.

Through the Hetzner API the server boots its rescue system with the operators' keys; over SSH
the installer (templates/fde/install.sh.j2) partitions and encrypts the disk, the Debian 13
system and the server's own layer (infra/fde/layer.py) are unpacked onto it, GRUB is put in
place, the LUKS header backup comes back to the operator, and a reset boots the new system,
which waits for `cloop-ops unlock`. The passphrase only ever travels on SSH's standard input.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcloud import Client
from hcloud.servers import BoundServer

from infra.fde.image import TEMPLATES, jinja, system_tarball
from infra.fde.layer import MAPPER, VG, VOLUMES, HostKeys, HostSettings, build_layer
from infra.fde.ssh import Remote
from infra.inventory import Host, Inventory

ALREADY_INSTALLED = 3
RESCUE_BOOT_S = 600.0


class FdeError(Exception):
    """An install or unlock step failed; the message says which and why."""


class AlreadyInstalledError(FdeError):
    pass


@dataclass(frozen=True)
class Kdf:
    """Cost of the key derivation (argon2id); tests lower it as emulated CPUs are slow."""

    iter_time_ms: int = 2000
    memory_kib: int = 1048576

    def options(self) -> str:
        return f"--iter-time {self.iter_time_ms} --pbkdf-memory {self.memory_kib}"


def state_dir(inventory: str, host: str) -> Path:
    """Where the operator keeps a server's known hosts and LUKS header (CLOOP_FDE_DIR)."""
    default = Path.home() / ".local" / "state" / "cloop" / "fde"
    base = Path(os.environ.get("CLOOP_FDE_DIR", default))
    path = base / inventory / host
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def find_host(inventory: Inventory, name: str) -> Host:
    """The host, with the address provisioning recorded for it."""
    for host in inventory.hosts:
        if host.name == name:
            if host.ssh_hostname is None:
                raise FdeError(f"{name} has no recorded address: run `cloop-ops provision` first")
            return host
    known = ", ".join(h.name for h in inventory.hosts)
    raise FdeError(f"no host {name} in inventory {inventory.name} (hosts: {known})")


def known_hosts_line(host: Host, key: str) -> str:
    port = host.ssh_port or 22
    address = host.ssh_hostname if port == 22 else f"[{host.ssh_hostname}]:{port}"
    return f"{address} {key}\n"


def operator_keys(inventory: Inventory) -> list[str]:
    """The operators' public keys ("type base64"), read from the files group data names."""
    keys = []
    for name, path in inventory.data.ssh_keys.items():
        file = Path(path).expanduser()
        if not file.is_file():
            raise FdeError(f"ssh key {name}: no file {file}")
        keys.append(" ".join(file.read_text().split()[:2]))
    return keys


def operator_identity(inventory: Inventory) -> Path | None:
    """The private key beside a listed public key, if this machine has one (else ssh-agent)."""
    for path in inventory.data.ssh_keys.values():
        private = Path(path).expanduser().with_suffix("")
        if private.is_file():
            return private
    return None


def render_installer(disk: str, kdf: Kdf) -> bytes:
    return jinja(TEMPLATES).get_template("install.sh.j2").render(
        disk=disk, mapper=MAPPER, vg=VG, volumes=VOLUMES, boot_mib=512,
        pbkdf_options=kdf.options(),
    ).encode()  # fmt: skip


@dataclass
class Installer:
    """One install of one server: the API, the rescue system, the operator's files."""

    client: Client
    inventory: Inventory
    host: Host
    state: Path
    out: Callable[[str], None]
    disk: str = "/dev/sda"
    kdf: Kdf = Kdf()
    kernel_cmdline: str = "console=tty0 console=ttyS0,115200"

    def _server(self) -> BoundServer:
        server = self.client.servers.get_by_name(self.host.name)
        if server is None:
            raise FdeError(f"no server {self.host.name} in the Hetzner project")
        return server

    def _rescue(self, server: BoundServer, keys: list[str], known_hosts: Path) -> Remote:
        """Boot the rescue system with the operators' keys (those registered in the project)."""
        registered = [
            k for k in self.client.ssh_keys.get_all()
            if " ".join((k.public_key or "").split()[:2]) in keys
        ]  # fmt: skip
        if not registered:
            raise FdeError("none of the operators' keys is registered in the Hetzner project")
        ids: list[Any] = [k.id for k in registered]  # the API takes key IDs
        self.client.servers.enable_rescue(server, type="linux64", ssh_keys=ids)
        self.client.servers.reset(server)
        assert self.host.ssh_hostname is not None
        rescue = Remote(
            self.host.ssh_hostname,
            self.host.ssh_port or 22,
            known_hosts,
            operator_identity(self.inventory),
            trust_first=True,
        )
        rescue.wait(RESCUE_BOOT_S, probe='test "$(cat /etc/hostname)" = rescue')
        return rescue

    def run(self, passphrase: str) -> dict[str, float]:
        """Install; return the seconds each stage took."""
        started = time.monotonic()
        keys = operator_keys(self.inventory)
        server = self._server()
        tarball = system_tarball()
        with tempfile.TemporaryDirectory(prefix="cloop-fde-") as tmp:
            work = Path(tmp)
            self.out(f"{self.host.name}: booting the rescue system")
            rescue = self._rescue(server, keys, work / "rescue_known_hosts")
            timings = {"rescue_boot_s": time.monotonic() - started}
            step = _Steps(rescue, render_installer(self.disk, self.kdf))
            if step("check", allow=(ALREADY_INSTALLED,)) == ALREADY_INSTALLED:
                self.client.servers.reset(server)  # back to its own disk: rescue is one-shot
                raise AlreadyInstalledError(
                    f"{self.host.name} is already installed with an encrypted disk; "
                    "nothing was changed (unlock it with `cloop-ops unlock`)"
                )
            ipv4, gateway, mac = step.output("facts").split()
            settings = HostSettings(
                hostname=self.host.name, ipv4=ipv4, gateway=gateway, mac=mac,
                luks_uuid=str(uuid.uuid4()), boot_uuid=str(uuid.uuid4()),
                authorized_keys=keys, apt_mirror=self.inventory.env.apt_mirror,
                kernel_cmdline=self.kernel_cmdline,
            )  # fmt: skip
            self.out(f"{self.host.name}: building its layer (initramfs with dropbear)")
            host_keys = build_layer(settings, work / "layer.tar")
            self.out(f"{self.host.name}: encrypting {self.disk} and unpacking Debian 13")
            step(f"prepare {settings.luks_uuid} {settings.boot_uuid}", data=f"{passphrase}\n")
            with tarball.open("rb") as system:
                step("unpack", source=system)
            with (work / "layer.tar").open("rb") as layer:
                step("layer", source=layer)
            step("bootloader")
            header = step.output_bytes("header")
            step("finish")
        self._record(host_keys, header)
        self.client.servers.reset(server)
        timings["install_s"] = time.monotonic() - started
        self.out(f"{self.host.name}: installed; it now waits for `cloop-ops unlock`")
        return timings

    def _record(self, keys: HostKeys, header: bytes) -> None:
        assert self.host is not None
        (self.state / "known_hosts").write_text(known_hosts_line(self.host, keys.system))
        (self.state / "unlock_known_hosts").write_text(known_hosts_line(self.host, keys.unlock))
        backup = self.state / "luks-header.img"
        backup.write_bytes(header)
        backup.chmod(0o600)
        self.out(f"{self.host.name}: LUKS header backup in {backup}")


@dataclass
class _Steps:
    """Runs the installer's phases in the rescue system; a failed phase is an FdeError."""

    remote: Remote
    script: bytes
    uploaded: bool = False

    def _call(self, phase: str, data: bytes | None, source: object = None) -> tuple[int, bytes]:
        if not self.uploaded:
            put = self.remote.run("cat > /root/cloop-install && chmod 700 /root/cloop-install",
                                  data=self.script)  # fmt: skip
            if put.returncode != 0:
                raise FdeError(f"cannot copy the installer: {put.stderr.decode().strip()}")
            self.uploaded = True
        result = self.remote.run(f"/root/cloop-install {phase}", data=data, source=source)  # type: ignore[arg-type]
        return result.returncode, result.stdout if result.returncode == 0 else result.stderr

    def __call__(
        self,
        phase: str,
        data: str | None = None,
        source: object = None,
        allow: tuple[int, ...] = (),
    ) -> int:
        code, text = self._call(phase, data.encode() if data else None, source)
        if code != 0 and code not in allow:
            lines = text.decode(errors="replace").strip().splitlines() or [f"exit {code}"]
            raise FdeError(f"installer step {phase.split(maxsplit=1)[0]} failed: {lines[-1]}")
        return code

    def output_bytes(self, phase: str) -> bytes:
        code, text = self._call(phase, None)
        if code != 0:
            raise FdeError(f"installer step {phase} failed: {text.decode(errors='replace')}")
        return text

    def output(self, phase: str) -> str:
        return self.output_bytes(phase).decode()
