"""Kernel and network parameters (dev-sec os-baseline / CIS 3.x) (OPS-1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.hosts.conftest import sysctl_values

pytestmark = pytest.mark.claim("OPS-1")
PERSISTED = "/etc/sysctl.d/90-cloop-hardening.conf"


def test_sysctl_persisted(host: Any, sysctl_key: str, data: dict[str, Any]) -> None:
    lines = host.file(PERSISTED).content_string.splitlines()
    assert f"{sysctl_key} = {data['sysctl_settings'][sysctl_key]}" in lines


def test_sysctl_live_value(
    host_name: str, sysctl_key: str, data: dict[str, Any], waive: Callable[[str], None]
) -> None:
    waive(sysctl_key)
    assert sysctl_values(host_name)[sysctl_key] == str(data["sysctl_settings"][sysctl_key])
