"""The monitoring data (group_data/all.py `monitoring`): validated on load, and its alert
endpoint is the one destination it adds to the hosts' egress allow-list (OPS-2, SUB-1)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.deploy.hostdata import ALERTS, Egress, alert_egress, alert_webhook
from infra.inventory import Inventory, InventoryError, load

pytestmark = pytest.mark.claim("OPS-2")


@pytest.fixture
def production() -> Inventory:
    return load("production")


def with_monitoring(inventory: Inventory, **changes: Any) -> Inventory:
    return inventory.with_data(monitoring=inventory.data.monitoring.model_dump() | changes)


def test_every_host_role_is_watched(production: Inventory) -> None:
    units = production.data.monitoring.units
    assert set(units) == {"debian13", "edge", "app", "db"}
    assert all(units.values())


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"disk_warning_percent": 90, "disk_critical_percent": 90},
      "disk_warning_percent must be below disk_critical_percent"),
     ({"certificate_warning_days": 7, "certificate_critical_days": 7},
      "certificate_warning_days must exceed certificate_critical_days"),
     ({"webhook_url": "http://ops.cloop.eu/alerts"}, "monitoring.webhook_url"),
     ({"backup_max_age_hours": 72}, "monitoring.backup_max_age_hours")],
)  # fmt: skip
def test_inconsistent_thresholds_are_refused_on_load(
    production: Inventory, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InventoryError, match=message):
        with_monitoring(production, **changes)


def test_the_alert_endpoint_is_allow_listed_on_its_port(production: Inventory) -> None:
    data = {"monitoring": production.data.monitoring.model_dump()}
    assert alert_webhook(data) == "https://ops.cloop.eu/alerts"
    egress = alert_egress(data, {"ops.cloop.eu": "192.0.2.7"})
    assert egress == {Egress("tcp", "192.0.2.7", 443, ALERTS)}


def test_the_lab_sends_alerts_to_its_own_receiver(production: Inventory) -> None:
    data = {
        "monitoring": production.data.monitoring.model_dump(),
        "monitoring_webhook_override": "http://10.0.2.2:35111/alerts",
    }
    assert alert_egress(data, {}) == {Egress("tcp", "10.0.2.2", 35111, ALERTS)}
