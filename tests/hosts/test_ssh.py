"""SSH (dev-sec ssh-baseline): keys only, no root password, no forwarding, modern crypto (OPS-1)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.hosts.conftest import sshd_effective, sshd_lines

pytestmark = pytest.mark.claim("OPS-1")
ALIASES = {"without-password": "prohibit-password"}  # the name `sshd -T` prints


def test_sshd_option(host_name: str, sshd_option: str, data: dict[str, Any]) -> None:
    wanted = (data["sshd_settings"] | data.get("sshd_settings_override", {}))[sshd_option]
    effective = sshd_effective(host_name)[sshd_option.lower()]
    if sshd_option == "LoginGraceTime":
        assert int(effective) == int(wanted)
    elif sshd_option == "RekeyLimit":
        assert effective.split()[-1] == "3600"  # "512M 1h" as sshd prints it: bytes, seconds
    else:
        assert ALIASES.get(effective, effective).lower() == wanted.lower()


@pytest.mark.parametrize(
    ("option", "key"), [("kexalgorithms", "sshd_kex"), ("ciphers", "sshd_ciphers"),
                        ("macs", "sshd_macs")]
)  # fmt: skip
def test_sshd_algorithms_exactly(
    host_name: str, option: str, key: str, data: dict[str, Any]
) -> None:
    assert sshd_effective(host_name)[option].split(",") == data[key]


def test_sshd_host_keys(host_name: str, data: dict[str, Any]) -> None:
    keys = {value for key, value in sshd_lines(host_name) if key == "hostkey"}
    assert keys == {f"/etc/ssh/ssh_host_{kind}_key" for kind in data["sshd_host_key_types"]}


def test_sshd_allow_users(host_name: str, data: dict[str, Any]) -> None:
    users = [value for key, value in sshd_lines(host_name) if key == "allowusers"]
    assert users == data["sshd_allow_users"]


def test_sshd_running_and_enabled(host: Any) -> None:
    service = host.service("ssh")
    assert service.is_running
    assert service.is_enabled


def test_sshd_listens_on_its_port(host: Any, data: dict[str, Any]) -> None:
    assert host.socket(f"tcp://0.0.0.0:{data['sshd_port']}").is_listening


def test_sshd_config_is_valid(host: Any) -> None:
    assert host.run("sshd -t").rc == 0


def test_password_login_refused(host_name: str, data: dict[str, Any]) -> None:
    """From the operator's side: a client offering only a password is turned away."""
    cmd = ["ssh", "-p", str(data.get("ssh_port", 22)), "-o", "BatchMode=yes",
           "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
           "-o", "ConnectTimeout=10"]  # fmt: skip
    if data.get("ssh_known_hosts_file"):
        cmd += ["-o", f"UserKnownHostsFile={data['ssh_known_hosts_file']}"]
    result = subprocess.run(
        [*cmd, f"root@{data['ssh_hostname']}", "true"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_no_weak_moduli_or_dsa_keys(host: Any) -> None:
    assert not host.file("/etc/ssh/ssh_host_dsa_key").exists


def test_login_banner(host: Any) -> None:
    banner = host.file("/etc/issue.net")
    assert banner.exists
    assert "Authorized access only" in banner.content_string


def test_fail2ban_guards_sshd(host: Any) -> None:
    assert host.service("fail2ban").is_running
    status = host.run("fail2ban-client status sshd")
    assert status.rc == 0, status.stderr
    assert "Currently banned" in status.stdout
