"""Residency: every host says, through Hetzner's metadata service, that it is in hel1 (RES-1)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hosts.conftest import inventory

pytestmark = pytest.mark.claim("RES-1")
METADATA = "http://169.254.169.254/hetzner/v1/metadata"


def metadata(host: Any, key: str) -> str:
    url = f"{METADATA}/{key}"
    script = f"import urllib.request as u; print(u.urlopen('{url}', timeout=5).read().decode())"
    return str(host.check_output(f'python3 -c "{script}"'))


def test_availability_zone_in_location(host: Any) -> None:
    zone = metadata(host, "availability-zone")
    assert zone.startswith(inventory().data.location + "-")


def test_region_is_network_zone(host: Any) -> None:
    assert metadata(host, "region") == inventory().data.network_zone


def test_metadata_names_this_host(host: Any, host_name: str) -> None:
    assert metadata(host, "hostname") == host_name


def test_private_network_address(host: Any, data: dict[str, Any]) -> None:
    networks = metadata(host, "private-networks")
    assert f'ip: "{data["private_ipv4"]}"' in networks or f"ip: {data['private_ipv4']}" in networks
    assert data["private_ipv4"] in host.interface(data["private_interface"]).addresses
