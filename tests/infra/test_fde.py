"""ENC-2 on a real kernel: install from the rescue system onto LUKS2, reboot, unlock over SSH.

One qemu VM plays a Hetzner server behind the Hetzner API stand-in. `install-fde` boots its
rescue system through the API (hcloud client), installs Debian 13 on LUKS2 + LVM, and resets
it; `unlock` types the passphrase into dropbear in the initramfs. testinfra then looks at the
running kernel: what a container cannot show.
"""

from __future__ import annotations

import runpy
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra

from infra.fde.install import AlreadyInstalledError
from infra.fde.lab import NAME, FdeLab, deploy_kernel_settings, installed
from infra.fde.ssh import UnreachableError
from infra.fde.unlock import WrongPassphraseError, unlock
from infra.inventory import INVENTORIES, Host

pytestmark = [pytest.mark.vm, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FdeLab]:
    """Create the server through the API, install it with full-disk encryption, unlock it."""
    with installed(tmp_path_factory.mktemp("fde")) as fde:
        yield fde


def vm_of(lab: FdeLab) -> testinfra.host.Host:
    """testinfra over SSH, checked against the host key pinned at install."""
    return testinfra.get_host("ssh://vm", ssh_config=str(lab.ssh_config()))


def _sysctls(vm: testinfra.host.Host, keys: dict[str, int]) -> dict[str, str]:
    output = vm.check_output("sysctl " + " ".join(keys))
    return dict(line.split(" = ", 1) for line in output.splitlines())


def _ssh(lab: FdeLab, command: str) -> bool:
    """Run a command on the installed system (pinned key); a dropped connection is a no."""
    probe = ["ssh", "-F", str(lab.ssh_config()), "-o", "ConnectTimeout=10", "vm", command]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _wait_until_down(lab: FdeLab, timeout_s: float = 180) -> None:
    """A reboot has begun once the system's sshd no longer answers."""
    deadline = time.monotonic() + timeout_s
    while _ssh(lab, "true"):
        assert time.monotonic() < deadline, "the system did not go down for the reboot"
        time.sleep(1)


@pytest.mark.claim("ENC-2")
def test_root_sits_on_luks2_dm_crypt(lab: FdeLab) -> None:
    vm = vm_of(lab)
    assert vm.mount_point("/").device == "/dev/mapper/vg0-root"
    chain = vm.check_output("lsblk -snro TYPE /dev/mapper/vg0-root").split()
    assert chain[:3] == ["lvm", "crypt", "part"], chain
    table = vm.check_output("dmsetup table root_crypt")
    assert " crypt aes-xts-plain64 " in table
    dump = vm.check_output("cryptsetup luksDump /dev/sda3")
    assert ["Version:", "2"] in [line.split() for line in dump.splitlines()]
    for mount in ("/var", "/var/log", "/var/log/audit", "/home"):
        assert vm.mount_point(mount).device.startswith("/dev/mapper/vg0-"), mount


@pytest.mark.claim("ENC-2")
def test_no_key_is_stored_anywhere_on_the_disk(lab: FdeLab) -> None:
    vm = vm_of(lab)
    lines = vm.file("/etc/crypttab").content_string.splitlines()
    entries = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    assert [(e[0], e[2]) for e in entries] == [("root_crypt", "none")], entries
    initramfs = vm.check_output("lsinitramfs /boot/initrd.img-$(uname -r)").split()
    assert "cryptroot/crypttab" in initramfs
    assert not [f for f in initramfs if f.startswith("cryptroot/keyfiles")]
    dump = vm.check_output("cryptsetup luksDump /dev/sda3")
    assert dump.count(": luks2") == 1  # exactly one key slot: the passphrase
    # The passphrase itself appears nowhere in the server's disk image, not even on /boot.
    disk = lab.backend.disk_path(NAME)
    found = subprocess.run(["grep", "-caF", lab.passphrase, str(disk)], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert found.stdout.strip() == "0", "passphrase found in the disk image"


@pytest.mark.claim("ENC-2")
def test_no_unencrypted_swap(lab: FdeLab) -> None:
    vm = vm_of(lab)
    for device in vm.check_output("swapon --show=NAME --noheadings").split():
        assert "crypt" in vm.check_output(f"lsblk -snro TYPE {device}").split(), device


@pytest.mark.claim("ENC-2")
def test_kernel_level_facts_a_container_cannot_show(lab: FdeLab) -> None:
    vm = vm_of(lab)
    assert vm.check_output("uname -r").endswith("-amd64")  # the VM's own Debian 13 kernel
    assert vm.file("/sys/module/apparmor/parameters/enabled").content_string.strip() == "Y"
    assert "dm_crypt" in vm.check_output("cat /proc/modules")


@pytest.mark.claim("ENC-2", "OPS-1")
def test_waived_kernel_checks_hold_on_a_real_kernel(lab: FdeLab, tmp_path: Path) -> None:
    """The lab's container waivers (host-wide sysctls, modules) hold after the base deploy."""
    deploy_kernel_settings(lab, tmp_path / "pyinfra.log")
    data = runpy.run_path(str(INVENTORIES / "group_data" / "debian13.py"))
    vm = vm_of(lab)
    live = _sysctls(vm, data["sysctl_settings"])
    assert live == {k: str(v) for k, v in data["sysctl_settings"].items()}
    loaded = {line.split()[0] for line in vm.file("/proc/modules").content_string.splitlines()}
    for module in data["blacklisted_modules"]:
        assert module.replace("-", "_") not in loaded, module
        assert vm.run(f"modprobe {module}").rc != 0, f"{module} can still be loaded"


@pytest.mark.claim("ENC-2")
def test_wrong_passphrase_then_second_reboot_and_unlock(lab: FdeLab) -> None:
    vm = vm_of(lab)
    boot_id = vm.file("/proc/sys/kernel/random/boot_id").content_string
    _ssh(lab, "systemctl reboot")  # the connection may drop before it answers
    _wait_until_down(lab)
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        lab.unlock("not-" + lab.passphrase)
    lab.unlock()
    after = vm_of(lab)
    assert after.file("/proc/sys/kernel/random/boot_id").content_string != boot_id
    assert after.mount_point("/").device == "/dev/mapper/vg0-root"
    # Host-wide settings persisted by the deploy are applied again at boot.
    settings = runpy.run_path(str(INVENTORIES / "group_data" / "debian13.py"))["sysctl_settings"]
    assert _sysctls(after, settings) == {k: str(v) for k, v in settings.items()}


@pytest.mark.claim("ENC-2")
def test_installing_an_installed_server_is_refused(lab: FdeLab) -> None:
    with pytest.raises(AlreadyInstalledError, match="already installed"):
        lab.installer().run(lab.passphrase)
    # Refused before touching the disk: the LUKS header is the one backed up at install.
    assert (lab.state / "luks-header.img").stat().st_size > 0


def test_unlock_of_an_unreachable_host_says_so(tmp_path: Path) -> None:
    for name in ("known_hosts", "unlock_known_hosts"):
        (tmp_path / name).write_text("")
    host = Host(name=NAME, roles=frozenset({"app"}), ssh_hostname="127.0.0.1", ssh_port=9)
    with pytest.raises(UnreachableError, match="neither the unlock shell nor the system"):
        unlock(host, "x", tmp_path, timeout_s=1)
