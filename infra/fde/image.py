"""The Debian 13 system the installer unpacks, and the lab's rescue image made from it.

Built once with mmdebstrap on the operator's machine and cached: the rescue system then only
partitions, encrypts, unpacks and configures, so package downloads never run there. No host
keys ship in the tarball: the installer makes fresh ones per server.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates" / "fde"
SUITE = "trixie"
BUILD_MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "systemd-resolved",
    "openssh-server",
    "python3",
    "sudo",
    "linux-image-amd64",
    "grub-pc",
    "cryptsetup",
    "cryptsetup-initramfs",
    "lvm2",
    "dropbear-initramfs",
    "busybox",
    "initramfs-tools",
    "zstd",
    "e2fsprogs",
    "fdisk",
    "iproute2",
    "ca-certificates",
    "kmod",
    "procps",
)
HOOKS = (
    # GRUB goes onto the disk in the installer, never onto the build machine's devices.
    'echo "grub-pc grub-pc/install_devices multiselect" | chroot "$1" debconf-set-selections',
)
CUSTOMIZE = (
    'rm -f "$1"/etc/ssh/ssh_host_* "$1"/etc/dropbear/initramfs/dropbear_*_host_key*',
    'rm -f "$1/etc/hostname" && : > "$1/etc/machine-id"',
)
DPKG_OPTS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)


class ImageError(Exception):
    """An image could not be built; the message names the log."""


@dataclass(frozen=True)
class RescueImage:
    """What the lab VM boots in rescue mode: a kernel, its initrd and a root disk."""

    kernel: Path
    initrd: Path
    disk: Path


def cache_dir() -> Path:
    """Caches live beside the repository unless CLOOP_CACHE says otherwise (CI)."""
    return Path(os.environ.get("CLOOP_CACHE", REPO / ".cache")) / "fde"


def _key(*parts: str) -> str:
    spec = "\n".join([SUITE, BUILD_MIRROR, *PACKAGES, *HOOKS, *CUSTOMIZE, *DPKG_OPTS, *parts])
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def _run(cmd: list[str], log: Path) -> None:
    with log.open("w") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise ImageError(f"{cmd[0]} failed (exit {result.returncode}); see {log}")


def system_tarball() -> Path:
    """The cached Debian 13 system (zstd tarball), built with mmdebstrap when missing."""
    target = cache_dir() / f"debian13-{_key()}.tar.zst"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"partial-{target.name}")  # the suffix picks the compression
    sources = [
        f"deb {BUILD_MIRROR} {SUITE} main",
        f"deb {BUILD_MIRROR} {SUITE}-updates main",
        f"deb {BUILD_MIRROR}-security {SUITE}-security main",
    ]
    _run(
        [
            "mmdebstrap",
            "--variant=apt",
            "--mode=root",
            "--format=tar",
            "--include=" + ",".join(PACKAGES),
            *[f"--dpkgopt={opt}" for opt in DPKG_OPTS],
            *[f"--essential-hook={hook}" for hook in HOOKS],
            *[f"--customize-hook={hook}" for hook in CUSTOMIZE],
            SUITE,
            str(partial),
            *sources,
        ],
        target.with_name(f"{target.name}.log"),
    )
    partial.rename(target)
    return target


def jinja(source: Path) -> Environment:
    """Templates of shell scripts and config files: no HTML, so no escaping; unknown names fail."""
    return Environment(  # noqa: S701
        loader=FileSystemLoader(source),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_tree(source: Path, root: Path, context: dict[str, object]) -> None:
    """Place `source/<path>.j2`, rendered, at `root/<path>` (every file on a host is a template)."""
    env = jinja(source)
    for template in sorted(source.rglob("*.j2")):
        relative = template.relative_to(source)
        dest = root / str(relative).removesuffix(".j2")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(env.get_template(str(relative)).render(context))
        executable = {"sbin", "init-premount"} & set(relative.parts)
        private = relative.name == "authorized_keys"
        dest.chmod(0o755 if executable else 0o600 if private else 0o644)


def system_tree() -> Path:
    """The system tarball unpacked once (read-only lower layer for rescue and host layers)."""
    tarball = system_tarball()
    tree = tarball.with_name(tarball.name.removesuffix(".tar.zst") + ".tree")
    if not tree.is_dir():
        partial = tree.with_name(f"partial-{tree.name}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        _run(
            ["tar", "--zstd", "-xpf", str(tarball), "-C", str(partial), "--numeric-owner"],
            tree.with_name(f"{tree.name}.log"),
        )
        partial.rename(tree)
    return tree


@contextmanager
def overlay(lower: Path, workdir: Path) -> Iterator[tuple[Path, Path]]:
    """A writable view of `lower`; yields (merged view, upper dir holding only the changes)."""
    upper, work, merged = workdir / "upper", workdir / "work", workdir / "merged"
    for path in (upper, work, merged):
        path.mkdir(parents=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
    try:
        yield merged, upper
    finally:
        subprocess.run(["umount", "-R", str(merged)], check=True)


def rescue_image(disk_mib: int = 2048) -> RescueImage:
    """The lab's stand-in for Hetzner's rescue system, made from the same Debian 13 tree.

    Like Hetzner's it is a complete Debian with cryptsetup, LVM and sshd that loads the keys
    given to `enable_rescue`; it boots from its own (read-only, snapshotted) disk.
    """
    source = TEMPLATES / "rescue"
    files = sorted(str(p.relative_to(source)) for p in source.rglob("*.j2"))
    content = "".join((source / f).read_text() for f in files)
    out = cache_dir() / f"rescue-{_key('rescue', *files, content, str(disk_mib))}"
    image = RescueImage(out / "vmlinuz", out / "initrd.img", out / "root.ext4")
    if image.disk.is_file():
        return image
    tree = system_tree()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with overlay(tree, out / "build") as (merged, _upper):
        render_tree(source, merged, {})
        for unit in ("systemd-networkd.service", "rescue-keys.service"):
            _run(["systemctl", "--root", str(merged), "enable", unit], out / "enable.log")
        boot = merged / "boot"
        shutil.copy(next(boot.glob("vmlinuz-*")), image.kernel)
        shutil.copy(next(boot.glob("initrd.img-*")), image.initrd)
        partial = out / "root.partial"
        _run(
            ["mkfs.ext4", "-q", "-L", "rescue", "-d", str(merged), str(partial), f"{disk_mib}M"],
            out / "mkfs.log",
        )
    shutil.rmtree(out / "build")
    partial.rename(image.disk)
    return image
