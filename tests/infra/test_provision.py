"""Provisioning through the real hcloud client against the Hetzner API stand-in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hcloud.firewalls import FirewallRule
from hcloud.locations import Location

from infra.inventory import INVENTORIES, Inventory, load, state_path
from infra.provision import provision
from infra.provision.desired import desired_resources
from infra.provision.engine import Plan, ProvisionError
from infra.provision.guard import ResidencyError
from infra.standins.hetzner import ApiError, RateLimit
from tests.conftest import REPO
from tests.infra.conftest import Hetzner


def run(hetzner: Hetzner, inv: Inventory, state: Path, *, dry_run: bool = False) -> Plan:
    lines: list[str] = []
    current, _ = provision(inv, token=hetzner.token, endpoint=hetzner.endpoint,
                           state_path=state, dry_run=dry_run, out=lines.append)  # fmt: skip
    return current


def actions(current: Plan) -> dict[str, str]:
    return {f"{c.desired.kind} {c.desired.name}": c.action for c in current.changes}


@pytest.mark.claim("RES-1")
@pytest.mark.parametrize("location", ["fsn1", "nbg1", "ash", "hil", "sin", "mars1"])
def test_locations_outside_helsinki_are_refused_before_any_api_call(
    hetzner: Hetzner, production: Inventory, tmp_path: Path, location: str
) -> None:
    with pytest.raises(ResidencyError) as refused:
        run(hetzner, production.with_data(location=location), tmp_path / "state.json")
    message = str(refused.value)
    assert message.startswith("primary ip cloop-prod-web-1-ipv4: ")
    assert f"location {location}" in message or f"unknown location '{location}'" in message
    assert "outside hel1" in message or "only hel1" in message
    assert hetzner.state.requests == []
    assert not (tmp_path / "state.json").exists()


@pytest.mark.claim("RES-1")
def test_a_network_zone_other_than_eu_central_is_refused(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    with pytest.raises(ResidencyError, match="network cloop-prod: network zone 'us-east'"):
        run(hetzner, production.with_data(network_zone="us-east"), tmp_path / "s.json")
    assert hetzner.state.requests == []


@pytest.mark.claim("RES-1")
def test_plan_apply_and_reapply(hetzner: Hetzner, production: Inventory, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    dry = run(hetzner, production, state, dry_run=True)
    assert set(actions(dry).values()) == {"create"}
    assert len(dry.changes) == len(desired_resources(production)) == 16
    assert hetzner.writes() == []
    assert not state.exists()

    run(hetzner, production, state)
    client = hetzner.client()
    located = [*client.servers.get_all(), *client.volumes.get_all(),
               *client.primary_ips.get_all(), *client.load_balancers.get_all()]  # fmt: skip
    assert len(located) == 3 + 1 + 6 + 1
    assert {r.location.name for r in located} == {"hel1"}
    web = client.servers.get_by_name("cloop-prod-web-1")
    assert web.protection == {"delete": True, "rebuild": True}
    assert web.image.name == "debian-13"
    assert web.server_type.name == "cx33"
    assert [f.firewall.id for f in web.public_net.firewalls] == [
        client.firewalls.get_by_name(n).id for n in ("cloop-prod-debian13", "cloop-prod-edge")
    ]
    hosts = json.loads(state.read_text())["hosts"]
    assert hosts["cloop-prod-web-1"]["ssh_hostname"] == web.public_net.ipv4.ip
    assert hosts["cloop-prod-db-1"]["private_ipv4"].startswith("10.42.1.")

    writes_before = len(hetzner.writes())
    again = run(hetzner, production, state)
    assert set(actions(again).values()) == {"unchanged"}
    assert len(hetzner.writes()) == writes_before


def test_drift_is_shown_and_corrected(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    run(hetzner, production, state)
    client = hetzner.client()
    server = client.servers.get_by_name("cloop-prod-db-1")
    server.update(labels={**server.labels, "env": "staging"})
    firewall = client.firewalls.get_by_name("cloop-prod-edge")
    opened = FirewallRule(direction="in", protocol="tcp", port="8080", source_ips=["0.0.0.0/0"])
    client.firewalls.set_rules(firewall, [*firewall.rules, opened])

    drift = run(hetzner, production, state, dry_run=True)
    changed = {c.desired.name: c for c in drift.changes if c.action == "update"}
    assert set(changed) == {"cloop-prod-db-1", "cloop-prod-edge"}
    assert changed["cloop-prod-db-1"].diffs["labels"][0]["env"] == "staging"
    assert "8080" in drift.render()
    assert "staging" in drift.render()

    run(hetzner, production, state)
    assert client.servers.get_by_name("cloop-prod-db-1").labels["env"] == "production"
    assert [r.port for r in client.firewalls.get_by_name("cloop-prod-edge").rules] == ["80", "443"]
    assert set(actions(run(hetzner, production, state)).values()) == {"unchanged"}


def test_a_conflict_stops_apply_before_any_change(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    client = hetzner.client()
    client.volumes.create(10, "cloop-prod-db-1-data", location=Location(name="hel1"))
    writes = len(hetzner.writes())
    with pytest.raises(
        ProvisionError, match=r"(?s)nothing changed.*volume cloop-prod-db-1-data.*size: 10 -> 100"
    ):
        run(hetzner, production, tmp_path / "s.json")
    assert len(hetzner.writes()) == writes


def test_a_rejected_token_gives_a_clear_error(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    with pytest.raises(ProvisionError, match="rejected the token"):
        provision(production, token="not-the-token", endpoint=hetzner.endpoint,
                  state_path=tmp_path / "s.json", out=lambda _: None)  # fmt: skip
    assert hetzner.writes() == []


def test_api_error_names_the_resource_and_a_rerun_resumes_without_orphans(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    hetzner.state.inject("POST", "^/v1/servers$", ApiError(503, "unavailable", "try later"))
    with pytest.raises(ProvisionError) as stopped:
        run(hetzner, production, state)
    assert "create server cloop-prod-web-1: Hetzner API error unavailable: try later" in str(
        stopped.value
    )
    recorded = json.loads(state.read_text())["resources"]
    assert len(recorded["primary_ip"]) == 6
    assert "server" not in recorded

    resumed = run(hetzner, production, state)
    assert actions(resumed)["primary_ip cloop-prod-web-1-ipv4"] == "unchanged"
    assert actions(resumed)["server cloop-prod-web-1"] == "create"
    rows = hetzner.state.rows
    assert len(rows["primary_ips"]) == 6
    assert len(rows["servers"]) == 3
    assert all(ip["assignee_id"] is not None for ip in rows["primary_ips"].values())
    assert run(hetzner, production, state).orphans == []


def test_labelled_resources_missing_from_the_inventory_are_reported(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    labels = {"managed-by": "cloop-ops", "env": "production"}
    hetzner.client().volumes.create(10, "left-over", labels=labels, location=Location(name="hel1"))
    current = run(hetzner, production, tmp_path / "s.json", dry_run=True)
    assert current.orphans == ["volume left-over"]
    assert "orphan    volume left-over" in current.render()


def test_rate_limit_waits_for_the_reset_time(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    hetzner.state.rate_limit = RateLimit(limit=40, per_second=40.0, remaining=40)
    run(hetzner, production, tmp_path / "s.json")
    statuses = [r.status for r in hetzner.state.requests]
    refused = [i for i, s in enumerate(statuses) if s == 429]
    assert refused, "the limit was never reached: the test proves nothing"
    assert all(statuses[i + 1] != 429 for i in refused)  # retried only once the bucket refilled
    assert len(hetzner.state.rows["servers"]) == 3


def test_rate_limit_too_far_away_gives_a_clear_error(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    hetzner.state.rate_limit = RateLimit(
        limit=3600, per_second=0.001, remaining=3, stamp=time.time()
    )
    with pytest.raises(ProvisionError, match="rate limit exhausted"):
        run(hetzner, production, tmp_path / "s.json")


PYINFRA_LOAD = """
import json, sys
from pyinfra.api import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory_from_files
keys = ("ssh_hostname", "ssh_port", "private_ipv4", "location")
with ctx_state.use(State()):
    inventory = make_inventory_from_files(sys.argv[1])
print(json.dumps({h.name: {k: h.data.get(k) for k in keys} for h in inventory}))
"""


def pyinfra_host_data(inventory_file: Path) -> dict[str, dict[str, Any]]:
    """Host data as pyinfra's own loader sees it (in a subprocess: pyinfra_cli monkey-patches
    the interpreter with gevent on import)."""
    loaded = subprocess.run([sys.executable, "-c", PYINFRA_LOAD, str(inventory_file)],
                            capture_output=True, text=True, check=True, cwd=REPO)  # fmt: skip
    hosts: dict[str, dict[str, Any]] = json.loads(loaded.stdout.splitlines()[-1])
    return hosts


def test_host_addresses_are_written_where_pyinfra_reads_them(
    hetzner: Hetzner, ssh_public_key: Path, tmp_path: Path
) -> None:
    shutil.copytree(INVENTORIES / "group_data", tmp_path / "group_data",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(INVENTORIES / "lab.py", tmp_path / "lab.py")
    lab = load("lab", tmp_path).with_data(ssh_keys={"operator": str(ssh_public_key)})
    provision(
        lab,
        token=hetzner.token,
        endpoint=hetzner.endpoint,
        out=lambda _: None,
        state_path=state_path("lab", tmp_path),
        ssh_port=lambda name: 2200 + len(name),
    )

    hosts = pyinfra_host_data(tmp_path / "lab.py")
    server = hetzner.client().servers.get_by_name("cloop-lab-db-1")
    assert hosts["cloop-lab-db-1"]["ssh_hostname"] == server.public_net.ipv4.ip
    assert hosts["cloop-lab-db-1"]["ssh_port"] == 2200 + len("cloop-lab-db-1")
    assert hosts["cloop-lab-db-1"]["private_ipv4"] == server.private_net[0].ip
    assert hosts["cloop-lab-db-1"]["location"] == "hel1"  # group_data/all.py, read by pyinfra
    assert load("lab", tmp_path).hosts[0].ssh_hostname is not None


def test_a_gateway_error_is_retried(
    hetzner: Hetzner, production: Inventory, tmp_path: Path
) -> None:
    hetzner.state.inject("GET", "^/v1/locations$", ApiError(502, "bad_gateway", "try again"))
    run(hetzner, production, tmp_path / "s.json", dry_run=True)
    first = [r.status for r in hetzner.state.requests[:2]]
    assert first == [502, 200]
