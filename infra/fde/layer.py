"""The per-server layer of an install, built on the operator's machine.

The server's configuration (crypttab without a key file, fstab, network, operator keys), fresh
host keys for sshd and dropbear and the initramfs are made here, in a chroot over the cached
system tree, and shipped to the rescue system as a small tarball. Building the initramfs inside
the rescue system is the same Debian tooling, only many times slower under emulation; the
known-hosts entries come straight from the keys made here, so no first connection is trusted
blindly. The private host keys leave this machine's temporary directory with the layer.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infra.fde.image import TEMPLATES, cache_dir, overlay, render_tree, system_tree

VG = "vg0"
MAPPER = "root_crypt"
BOOT_OPTIONS = "nodev,nosuid,noexec"


@dataclass(frozen=True)
class Volume:
    """A logical volume on the encrypted disk: share of the volume group and mount options."""

    name: str
    mount: str
    percent: int
    options: str


# Separate file systems so that a full log cannot stop the database and mount options differ.
VOLUMES = (
    Volume("root", "/", 40, "errors=remount-ro"),
    Volume("var", "/var", 25, "nodev,nosuid"),
    Volume("var-log", "/var/log", 10, "nodev,nosuid,noexec"),
    Volume("var-log-audit", "/var/log/audit", 5, "nodev,nosuid,noexec"),
    Volume("home", "/home", 10, "nodev,nosuid"),
)


class LayerError(Exception):
    """The layer could not be built or its initramfs would not unlock; the message says why."""


@dataclass(frozen=True)
class HostSettings:
    """What makes one server's install its own."""

    hostname: str
    ipv4: str
    gateway: str
    mac: str
    luks_uuid: str
    boot_uuid: str
    authorized_keys: list[str]
    apt_mirror: str
    security_mirror: str = "http://deb.debian.org/debian-security"
    kernel_cmdline: str = "console=tty0 console=ttyS0,115200"
    volumes: tuple[Volume, ...] = field(default=VOLUMES)


@dataclass(frozen=True)
class HostKeys:
    """Public host keys of the installed system and of its unlock shell (OpenSSH format)."""

    system: str
    unlock: str


def _chroot(root: Path, *command: str) -> str:
    result = subprocess.run(
        ["chroot", str(root), *command], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LayerError(f"{' '.join(command)} failed: {result.stderr.strip()[-400:]}")
    return result.stdout


def _check_initramfs(root: Path, kernel: str) -> None:
    """Refuse an initramfs that could not unlock over SSH or that carries a key."""
    listing = set(_chroot(root, "lsinitramfs", f"/boot/initrd.img-{kernel}").split())
    needed = {
        "cryptroot/crypttab",
        "usr/sbin/dropbear",
        "usr/bin/cryptroot-unlock",
        "scripts/init-premount/cloop-network",
    }
    if missing := needed - listing:
        raise LayerError(f"initramfs lacks {', '.join(sorted(missing))}")
    if any(name.startswith("cryptroot/keyfiles") for name in listing):
        raise LayerError("initramfs carries a key file")


def build_layer(settings: HostSettings, out: Path) -> HostKeys:
    """Write the server's layer tarball to `out`; return its new public host keys."""
    context = {**asdict(settings), "vg": VG, "mapper": MAPPER, "boot_options": BOOT_OPTIONS}
    context["volumes"] = settings.volumes
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=cache_dir(), prefix="layer-") as tmp,
        overlay(system_tree(), Path(tmp)) as (root, upper),
    ):
        render_tree(TEMPLATES / "host", root, context)
        _chroot(root, "systemctl", "enable", "--quiet", "systemd-networkd")
        _chroot(root, "ssh-keygen", "-A", "-q")
        _chroot(root, "dropbearkey", "-t", "ed25519", "-f", DROPBEAR_KEY)
        kernel = next((root / "usr/lib/modules").iterdir()).name
        subprocess.run(["mount", "--bind", "/proc", str(root / "proc")], check=True)
        _chroot(root, "update-initramfs", "-u", "-k", kernel)
        _check_initramfs(root, kernel)
        keys = HostKeys(
            system=(root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split(" root@")[0],
            unlock=_chroot(root, "dropbearkey", "-y", "-f", DROPBEAR_KEY)
            .splitlines()[1]
            .rsplit(" ", 1)[0],
        )
        subprocess.run(
            ["tar", "-cf", str(out), "-C", str(upper), "--numeric-owner",
             "--exclude=./dev", "--exclude=./proc", "--exclude=./var/tmp", "--exclude=./tmp",
             "."],
            check=True,
        )  # fmt: skip
    return keys


DROPBEAR_KEY = "/etc/dropbear/initramfs/dropbear_ed25519_host_key"
