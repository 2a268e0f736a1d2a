"""Packages, services and listening ports (CIS 2, dev-sec): minimal services, updates (OPS-1)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.deploy.hostdata import apt_mirror, apt_security_mirror
from tests.hosts.conftest import installed

pytestmark = pytest.mark.claim("OPS-1")
# The lab's metadata stand-in listens inside the host's network namespace, outside the host.
NOT_THE_HOSTS = ("169.254.169.254",)


def test_package_installed(host_name: str, package_present: str) -> None:
    assert package_present in installed(host_name)


def test_tool_default(host: Any, tool_default: str, data: dict[str, Any]) -> None:
    """The tools' own schedules are on (system activity accounting, weekly debsums)."""
    key, value = data["package_tool_defaults"][tool_default]
    assert f"{key}={value}" in host.file(tool_default).content_string.splitlines()


def test_package_absent(host_name: str, package_absent: str) -> None:
    assert package_absent not in installed(host_name)


def test_no_kernel_package_in_containers_only(host: Any, host_name: str) -> None:
    """A container boots no kernel of its own; a VM must have one (and it is then updated)."""
    in_container = host.check_output("systemd-detect-virt --container || true") not in ("", "none")
    has_kernel = any(p.startswith("linux-image-") for p in installed(host_name))
    assert has_kernel != in_container


def test_only_expected_public_listeners(
    host: Any, roles: frozenset[str], data: dict[str, Any]
) -> None:
    allowed = {p for group in ("debian13", *roles) for p in data["listening_ports"].get(group, [])}
    out = host.check_output("ss -Htlnu")
    public = set()
    for line in out.splitlines():
        local = line.split()[4]
        address, port = local.rsplit(":", 1)
        if address.startswith(("127.", "[::1]", "::1")) or address in NOT_THE_HOSTS:
            continue
        public.add(int(port))
    assert public <= allowed


def test_no_failed_units(host: Any) -> None:
    assert host.check_output("systemctl --failed --no-legend --plain") == ""


def test_apt_sources_only_the_environments_mirror(
    host: Any, host_name: str, data: dict[str, Any]
) -> None:
    sources = host.file("/etc/apt/sources.list.d/debian.sources").content_string
    uris = {line.split(": ", 1)[1] for line in sources.splitlines() if line.startswith("URIs:")}
    assert uris == {apt_mirror(host_name, data), apt_security_mirror(host_name, data)}
    legacy = host.file("/etc/apt/sources.list").content_string.splitlines()
    assert all(line.startswith("#") for line in legacy)
    assert host.check_output("ls /etc/apt/sources.list.d") == "debian.sources"


def test_apt_refuses_unauthenticated(host: Any) -> None:
    config = host.check_output("apt-config dump")
    assert 'APT::Get::AllowUnauthenticated "false";' in config
    assert 'Acquire::AllowInsecureRepositories "false";' in config


def test_unattended_upgrades_configured(host: Any) -> None:
    config = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    assert 'APT::Periodic::Update-Package-Lists "1";' in config
    assert (
        "label=Debian-Security"
        in host.file("/etc/apt/apt.conf.d/50unattended-upgrades").content_string
    )


@pytest.mark.parametrize("timer", ["apt-daily.timer", "apt-daily-upgrade.timer"])
def test_update_timers_active(host: Any, timer: str) -> None:
    assert host.service(timer).is_enabled
    assert host.service(timer).is_running


def test_unattended_upgrades_dry_run(host: Any) -> None:
    """unattended-upgrade reads the configuration and finds the security origin."""
    result = host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -m1 'Allowed origins'")
    assert "Debian-Security" in result.stdout
