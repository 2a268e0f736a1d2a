"""`cloop-ops provision` as an operator runs it: one-line errors, a plan that changes nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.infra.conftest import Hetzner

CLOOP_OPS = str(REPO / ".venv" / "bin" / "cloop-ops")


def cloop_ops(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HCLOUD_", "S3_"))}
    return subprocess.run([CLOOP_OPS, *args], env=clean | env, capture_output=True, text=True,
                          check=False, timeout=120)  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {expected}")


@pytest.fixture
def home(tmp_path: Path, ssh_public_key: Path) -> Path:
    """A HOME holding the operator key where group_data/all.py expects it."""
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519.pub").write_bytes(ssh_public_key.read_bytes())
    return tmp_path


def test_missing_token(hetzner: Hetzner, home: Path) -> None:
    result = cloop_ops("provision", "production", HOME=str(home), HCLOUD_ENDPOINT=hetzner.endpoint)
    assert_one_line_error(result, "HCLOUD_TOKEN is not set")
    assert hetzner.state.requests == []


def test_rejected_token(hetzner: Hetzner, home: Path) -> None:
    result = cloop_ops("provision", "production", "--dry-run", HOME=str(home),
                       HCLOUD_TOKEN="wrong", HCLOUD_ENDPOINT=hetzner.endpoint)  # fmt: skip
    assert_one_line_error(result, "the Hetzner API rejected the token")
    assert hetzner.writes() == []


def test_missing_ssh_key_is_named_before_any_request(hetzner: Hetzner, tmp_path: Path) -> None:
    result = cloop_ops("provision", "production", "--dry-run", HOME=str(tmp_path),
                       HCLOUD_TOKEN=hetzner.token, HCLOUD_ENDPOINT=hetzner.endpoint)  # fmt: skip
    assert_one_line_error(result, "ssh key cloop-prod-operator: cannot read")
    assert hetzner.state.requests == []


def test_unknown_inventory() -> None:
    assert_one_line_error(cloop_ops("provision", "prod"), "unknown inventory 'prod'")


def test_dry_run_prints_the_plan_and_changes_nothing(hetzner: Hetzner, home: Path) -> None:
    result = cloop_ops("provision", "production", "--dry-run", HOME=str(home),
                       HCLOUD_TOKEN=hetzner.token, HCLOUD_ENDPOINT=hetzner.endpoint)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "  create    server cloop-prod-web-1" in result.stdout
    assert "Summary: 16 create, 0 update, 0 unchanged, 0 conflict" in result.stdout
    assert hetzner.writes() == []
