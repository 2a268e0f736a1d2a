"""The deploy's secret store: generated once on the operator's machine, private, stable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from infra.deploy.secrets import scram_verifier, secret, secrets_dir
from tests.conftest import REPO


@pytest.mark.claim("ENC-3")
def test_secrets_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = secret("lab", "pgbackrest_passphrase", tmp_path)
    assert len(first) >= 64
    assert secret("lab", "pgbackrest_passphrase", tmp_path) == first
    assert secret("lab", "cloop_app_password", tmp_path) != first
    assert secret("staging", "pgbackrest_passphrase", tmp_path) != first
    assert stat.S_IMODE((tmp_path / "lab.json").stat().st_mode) == 0o600


@pytest.mark.claim("ENC-3")
def test_default_store_is_outside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOOP_SECRETS_DIR", raising=False)
    assert not secrets_dir().resolve().is_relative_to(REPO)


def test_scram_verifier_is_stable_and_hides_the_password() -> None:
    verifier = scram_verifier("correct horse", "cloop_app")
    assert verifier == scram_verifier("correct horse", "cloop_app")
    assert verifier != scram_verifier("correct horse", "cloop_owner")
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert "correct horse" not in verifier
