"""Audit and logging (CIS 4): persistent journal kept 12 months (LOG-3), auditd with rules,
time synchronisation against the allow-listed servers only (OPS-1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.deploy.hostdata import ntp_servers

AUDIT_KEYS = ["time-change", "identity", "scope", "actions", "system-locale", "logins", "session",
              "perm_mod", "access", "mounts", "delete", "modules", "sshd", "firewall"]  # fmt: skip


@pytest.mark.claim("LOG-3")
def test_journald_setting(host: Any, journald_key: str, data: dict[str, Any]) -> None:
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    values = [
        line.split("=", 1)[1] for line in config.splitlines() if line.startswith(f"{journald_key}=")
    ]
    assert values, f"{journald_key} not set"
    assert values[-1] == data["journald"][journald_key]  # the last one read wins


@pytest.mark.claim("LOG-3")
def test_journal_is_persistent(host: Any) -> None:
    journal = host.file("/var/log/journal")
    assert journal.is_directory
    assert journal.group == "systemd-journal"
    header = host.check_output("journalctl --header -n0 --no-pager | grep -m1 'File path'")
    assert "/var/log/journal/" in header


@pytest.mark.claim("LOG-3")
def test_journal_retention_is_twelve_months(host: Any) -> None:
    """12 months to the day, as systemd counts them (a month is 30.44 days)."""
    config = host.file("/etc/systemd/journald.conf.d/90-cloop-retention.conf").content_string
    assert "MaxRetentionSec=12month" in config.splitlines()
    seconds = host.check_output("systemd-analyze timespan 12month | awk '/μs:/ {print $2}'")
    assert int(seconds) // 1_000_000 // 86400 == 365


@pytest.mark.claim("OPS-1")
@pytest.mark.parametrize("key", AUDIT_KEYS)
def test_audit_rule(host: Any, key: str) -> None:
    rules = host.file("/etc/audit/rules.d/cloop.rules").content_string
    assert f"-k {key}" in rules


@pytest.mark.claim("OPS-1")
def test_audit_rules_immutable(host: Any) -> None:
    lines = host.file("/etc/audit/rules.d/cloop.rules").content_string.splitlines()
    assert lines[-1] == "-e 2"


@pytest.mark.claim("OPS-1")
def test_auditd_enabled(host: Any) -> None:
    assert host.service("auditd").is_enabled


@pytest.mark.claim("OPS-1")
def test_auditd_running(host: Any, waive: Callable[[str], None]) -> None:
    waive("")
    assert host.service("auditd").is_running


@pytest.mark.claim("OPS-1")
def test_audit_rules_loaded(host: Any, waive: Callable[[str], None]) -> None:
    waive("")
    assert "-k identity" in host.check_output("auditctl -l")


@pytest.mark.claim("OPS-1")
def test_chrony_servers(host: Any, host_name: str, roles: frozenset[str]) -> None:
    lines = host.file("/etc/chrony/chrony.conf").content_string.splitlines()
    servers = [line.split()[1] for line in lines if line.startswith("server ")]
    assert servers == ntp_servers(host_name, {*roles, "debian13"})
    assert servers


@pytest.mark.claim("OPS-1")
def test_chrony_enabled(host: Any) -> None:
    assert host.service("chrony").is_enabled


@pytest.mark.claim("OPS-1")
def test_chrony_running(host: Any, waive: Callable[[str], None]) -> None:
    waive("")
    assert host.service("chrony").is_running
