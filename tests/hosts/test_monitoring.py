"""Monitoring on the host (OPS-2): the checks run every minute, and a stopped service is an alert.

The drill stops a watched service that no one misses for a minute, runs a round of checks the
way the timer does (`systemctl start`, so it never races the timer), and finds the alert in the
journal and at the operator's endpoint; then it restarts the service and sees the recovery. A
round that ends successfully has delivered every alert (the program fails while any waits);
where the receiver's log is at hand (the lab) the test also reads what arrived there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.standins.alerts import read_alerts

pytestmark = pytest.mark.claim("OPS-2")

DRILL_UNIT = "fail2ban.service"  # watched on every host; a minute without it harms nothing
CHECK = "cloop-healthcheck.service"
STATE = "/var/lib/cloop-healthcheck/state.json"


def watched(data: dict[str, Any], roles: frozenset[str]) -> list[str]:
    units: dict[str, list[str]] = data["monitoring"]["units"]
    return [u for group in ("debian13", *sorted(roles)) for u in units.get(group, [])]


def check_round(host: Any) -> None:
    """One round of checks, as the timer starts it; it fails while an alert is undelivered."""
    result = host.run(f"systemctl start {CHECK}")
    status = host.run(f"journalctl -u {CHECK} -n 5 --no-pager -o cat").stdout
    assert result.rc == 0, f"{result.stderr}\n{status}"


def alerts_since(host: Any, since: str) -> list[dict[str, Any]]:
    out = host.check_output(f"journalctl -t cloop-alert --since @{since} --no-pager -o cat")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def find(alerts: list[dict[str, Any]], check: str, event: str) -> dict[str, Any]:
    matches = [a for a in alerts if a["check"] == check and a["event"] == event]
    assert matches, f"no {event} alert for {check} among {alerts}"
    return matches[-1]


def test_checks_run_every_minute(host: Any, data: dict[str, Any]) -> None:
    """The timer is on, and the last round it started is no older than two intervals."""
    interval = data["monitoring"]["interval_s"]
    timer = host.service("cloop-healthcheck.timer")
    assert timer.is_enabled
    assert timer.is_running
    unit = host.file("/etc/systemd/system/cloop-healthcheck.timer").content_string
    assert f"OnUnitActiveSec={interval}s" in unit.splitlines()
    state = json.loads(host.check_output(f"cat {STATE}"))
    age = float(host.check_output("date +%s.%N")) - state["checked_at"]
    assert 0 <= age <= 2 * interval + 10, f"last round {age:.0f} s ago"


def test_every_watched_unit_is_checked(
    host: Any, data: dict[str, Any], roles: frozenset[str]
) -> None:
    check_round(host)
    state = json.loads(host.check_output(f"cat {STATE}"))
    assert {f"unit:{u}" for u in watched(data, roles)} <= set(state["checks"])
    assert state["outbox"] == []


@pytest.fixture
def drill(host: Any, data: dict[str, Any], roles: frozenset[str]) -> Iterator[str]:
    """Stops the drill unit for the test; whatever happens, it runs again afterwards."""
    assert DRILL_UNIT in watched(data, roles)
    assert host.service(DRILL_UNIT).is_running
    check_round(host)  # the baseline: the unit is known to be up
    since = host.check_output("date +%s")
    host.check_output(f"systemctl stop {DRILL_UNIT}")
    try:
        yield since
    finally:
        host.run(f"systemctl start {DRILL_UNIT}")


def test_a_stopped_service_is_alerted_and_its_recovery_announced(
    host: Any, host_name: str, data: dict[str, Any], drill: str
) -> None:
    check_round(host)
    problem = find(alerts_since(host, drill), f"unit:{DRILL_UNIT}", "problem")
    assert (problem["severity"], problem["host"]) == ("critical", host_name)
    assert problem["message"] == f"{DRILL_UNIT} is inactive"

    host.check_output(f"systemctl start {DRILL_UNIT}")
    check_round(host)
    recovery = find(alerts_since(host, drill), f"unit:{DRILL_UNIT}", "recovery")
    assert recovery["previous"] == "critical"

    log = data.get("monitoring_alerts_log")
    if log:  # the receiver's side, where the operator can read it (the lab)
        received = {a["id"] for a in read_alerts(Path(log))}
        assert {problem["id"], recovery["id"]} <= received
