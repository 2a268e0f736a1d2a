"""Filesystems and kernel modules (CIS 1.1): temporary filesystems, blacklisted modules (OPS-1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.hosts.conftest import mount_options

pytestmark = pytest.mark.claim("OPS-1")
BLACKLIST = "/etc/modprobe.d/cloop-blacklist.conf"


def test_tmp_mount(host_name: str, tmp_mount: tuple[str, str]) -> None:
    path, option = tmp_mount
    assert option in mount_options(host_name)[path]


def test_tmp_mount_for_every_boot(host: Any, data: dict[str, Any]) -> None:
    options = data["tmp_mount_options"]
    unit = host.file("/etc/systemd/system/tmp.mount.d/cloop.conf").content_string
    fstab = host.file("/etc/fstab").content_string
    assert all(o in unit for o in options)
    assert f"tmpfs /dev/shm tmpfs rw,mode=1777,{','.join(options)} 0 0" in fstab.splitlines()


def test_module_blacklisted(host: Any, module: str) -> None:
    lines = host.file(BLACKLIST).content_string.splitlines()
    assert f"install {module} /bin/false" in lines
    assert f"blacklist {module}" in lines


def test_module_not_loaded(host: Any, module: str, waive: Callable[[str], None]) -> None:
    waive(module)
    loaded = {line.split()[0] for line in host.file("/proc/modules").content_string.splitlines()}
    assert module.replace("-", "_") not in loaded


def test_world_writable_directories_are_sticky(host: Any) -> None:
    found = host.check_output(
        "find / -xdev -type d -perm -0002 ! -perm -1000 -print 2>/dev/null | head -5"
    )
    assert found == ""


def test_no_unowned_files(host: Any) -> None:
    assert (
        host.check_output("find / -xdev \\( -nouser -o -nogroup \\) -print 2>/dev/null | head -5")
        == ""
    )
