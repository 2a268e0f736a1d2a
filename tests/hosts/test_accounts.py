"""Accounts and files (CIS 5/6): deploy user, password rules, core dumps, file modes (OPS-1)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.claim("OPS-1")


def test_file_mode(host: Any, file_path: str, data: dict[str, Any]) -> None:
    owner, group, mode = (data["file_modes"] | data["directory_modes"])[file_path]
    target = host.file(file_path)
    assert (target.user, target.group, f"{target.mode:o}") == (owner, group, mode)


def test_login_defs(host: Any, login_def: str, data: dict[str, Any]) -> None:
    lines = [line.split() for line in host.file("/etc/login.defs").content_string.splitlines()]
    assert [login_def, data["login_defs"][login_def]] in lines


def test_password_quality(host: Any, pwquality_key: str, data: dict[str, Any]) -> None:
    value = data["pwquality"][pwquality_key]
    expected = pwquality_key if value == "" else f"{pwquality_key} = {value}"
    assert expected in host.file("/etc/security/pwquality.conf").content_string.splitlines()


def test_pam_uses_pwquality(host: Any) -> None:
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string


def test_deploy_user(host: Any, data: dict[str, Any]) -> None:
    user = host.user(data["deploy_user"])
    assert user.exists
    assert "sudo" in user.groups
    assert user.shell == "/bin/bash"


def test_deploy_user_password_locked(host: Any, data: dict[str, Any]) -> None:
    assert host.check_output(f"passwd -S {data['deploy_user']}").split()[1] == "L"


def test_deploy_user_has_operator_keys(host: Any, data: dict[str, Any]) -> None:
    keys = host.file(f"/home/{data['deploy_user']}/.ssh/authorized_keys")
    assert keys.mode == 0o600
    assert keys.content_string.strip()


def test_deploy_user_may_sudo(host: Any, data: dict[str, Any]) -> None:
    assert host.run("visudo -c").rc == 0
    assert host.run(f"sudo -l -U {data['deploy_user']}").stdout.count("NOPASSWD: ALL") == 1


def test_home_directory_private(host: Any, data: dict[str, Any]) -> None:
    assert host.file(f"/home/{data['deploy_user']}").mode == 0o750


def test_only_root_has_uid_0(host: Any) -> None:
    assert host.check_output("awk -F: '$3 == 0 {print $1}' /etc/passwd") == "root"


def test_no_empty_passwords(host: Any) -> None:
    assert host.check_output("awk -F: '$2 == \"\" {print $1}' /etc/shadow") == ""


def test_no_core_dumps(host: Any) -> None:
    limits = host.file("/etc/security/limits.d/90-cloop-coredump.conf").content_string
    assert "* hard core 0" in limits.splitlines()
    coredump = host.file("/etc/systemd/coredump.conf.d/90-cloop.conf").content_string
    assert {"Storage=none", "ProcessSizeMax=0"} <= set(coredump.splitlines())


def test_root_login_shell_only_for_root(host: Any) -> None:
    """System accounts cannot log in (nologin/false shells)."""
    shells = host.check_output(
        "awk -F: '$3 > 0 && $3 < 1000 && $7 !~ /(nologin|false|sync)$/ {print $1}' /etc/passwd"
    )
    assert shells == ""
