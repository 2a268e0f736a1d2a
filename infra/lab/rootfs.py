"""The lab's Debian 13 root filesystem: built once with mmdebstrap, cached, shared read-only.

Each lab host boots an overlay of this tree, so a fresh `lab up` costs no rebuild. The image
carries what Hetzner's `debian-13` image carries (systemd, sshd, python3, sudo); the packages the
deploy installs are only *downloaded* into apt's cache, so the deploy still installs them for real
but without waiting for the network.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

from infra.lab.paths import CACHE

SUITE = "trixie"
# Like Hetzner's image, current at build time: stable, its updates and its security updates.
SOURCES = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
IMAGE_PACKAGES = (
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "iproute2",
    "procps",
    "kmod",
    "ca-certificates",
)
# Installed by the deploy (infra/deploy/tasks); fetched ahead so installs need no download.
DEPLOY_PACKAGES = (
    "nftables",
    "auditd",
    "unattended-upgrades",
    "apt-listchanges",
    "chrony",
    "lynis",
    "libpam-pwquality",
    "libpam-tmpdir",
    "debsums",
    "needrestart",
    "fail2ban",
    "python3-systemd",
    "sysstat",
    "apt-show-versions",
    "chkrootkit",
    # the stack's roles (db, edge, app)
    "postgresql-17",
    "postgresql-17-pgvector",
    "pgbackrest",
    "ssl-cert",
    "nginx",
    "certbot",
)


def cache_key() -> str:
    """Identify a build by everything that shapes it, so a changed list rebuilds."""
    spec = "\n".join([*SOURCES, *IMAGE_PACKAGES, "--", *DEPLOY_PACKAGES, "v2"])
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def rootfs_path() -> Path:
    """Where the cached tree for the current package lists lives."""
    return CACHE / f"rootfs-{SUITE}-{cache_key()}"


def ensure_rootfs() -> tuple[Path, bool]:
    """Return the cached tree, building it first when missing; the flag says it was built.

    Concurrent callers (two test runs) wait for one build instead of writing into the same tree.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "rootfs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        target = rootfs_path()
        if (target / "etc" / "os-release").exists():
            return target, False
        _build(target)
        return target, True


def _build(target: Path) -> None:
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    hooks = [
        'rm -f "$1/etc/fstab" && touch "$1/etc/fstab"',
        'rm -f "$1/etc/hostname" "$1/etc/machine-id" && touch "$1/etc/machine-id"',
        'chroot "$1" apt-get install --download-only -y -q --no-install-recommends '
        + " ".join(DEPLOY_PACKAGES),
    ]
    cmd = [
        "mmdebstrap",
        "--verbose",
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        "--include=" + ",".join(IMAGE_PACKAGES),
        "--skip=cleanup/apt/cache",
        *[f"--customize-hook={hook}" for hook in hooks],
        SUITE,
        str(building),
        *SOURCES,
    ]
    log = CACHE / "rootfs-build.log"
    with log.open("w") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise RuntimeError(f"mmdebstrap failed (exit {result.returncode}); see {log}")
    building.rename(target)
    _drop_stale(target)


def _drop_stale(current: Path) -> None:
    """Remove trees of older package lists (about 300 MB each) that no lab host mounts."""
    mounts = Path("/proc/mounts").read_text()
    for old in CACHE.glob("rootfs-*"):
        if old.is_dir() and old != current and f"lowerdir={old}," not in mounts:
            shutil.rmtree(old, ignore_errors=True)
