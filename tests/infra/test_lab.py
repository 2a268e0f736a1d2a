"""The lab end to end, as CI runs it: `lab up` (provision through the Hetzner API stand-in,
pyinfra deploy, testinfra verify, Lynis), a second deploy that changes nothing, `lab down`.

Needs root (network namespaces, systemd-nspawn); the rootfs is cached under .cache/lab.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import inventory
from infra.deploy.run import deploy
from infra.lab import lab, state
from infra.lab.paths import GROUP_DATA, STATE_DIR

pytestmark = pytest.mark.lab
MIN_CHECKS = 120
LYNIS_GOAL = 80


@pytest.fixture(scope="module")
def lab_up() -> Iterator[lab.UpResult]:
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (network namespaces, systemd-nspawn)")
    if state.read():
        pytest.fail("a lab is already up: run ./scripts/lab down first")
    try:
        yield lab.up(lab.Progress(out=lambda line: print(line, flush=True)))
    finally:
        lab.down(out=lambda line: None)


@pytest.mark.claim("OPS-1", "RES-1", "SUB-1", "RES-5", "LOG-3")
def test_lab_up_deploys_and_verifies(lab_up: lab.UpResult) -> None:
    assert lab_up.verify is not None
    assert lab_up.verify.ok
    assert lab_up.verify.passed >= MIN_CHECKS
    assert lab_up.verify.failed == 0


@pytest.mark.claim("OPS-1")
def test_lynis_hardening_index(lab_up: lab.UpResult) -> None:
    assert lab_up.lynis_index is not None
    assert lab_up.lynis_index >= LYNIS_GOAL


@pytest.mark.claim("OPS-1")
def test_second_deploy_changes_nothing(lab_up: lab.UpResult) -> None:
    again = deploy(lab.INVENTORY, STATE_DIR / "redeploy.log", [GROUP_DATA])
    # Fewer operations than the first run is expected: first-run-only steps (the bootstrap
    # certificate, the first ACME order, uploading a new wheelhouse) are not planned again.
    assert 0 < again.operations <= lab_up.deploy.operations
    assert again.changed == 0, again.log.read_text()[-3000:]


def test_down_removes_everything(lab_up: lab.UpResult) -> None:
    recorded = state.read()
    namespaces = list(recorded["netns"])
    processes = list(recorded["processes"])
    lab.down(out=lambda line: None)
    assert not any(Path(f"/run/netns/{ns}").exists() for ns in namespaces)
    assert not any(state.alive(p) for p in processes)
    assert state.read() == {}
    assert not inventory.state_path(lab.INVENTORY).exists()
