"""`cloop-ops install-fde` / `unlock`: bad input is one clear line, never a traceback."""

from __future__ import annotations

import subprocess

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.fde.install import FdeError, Kdf, render_installer
from infra.fde.unlock import read_passphrase


def test_unlock_of_an_unknown_host_is_one_clear_line() -> None:
    result = CliRunner().invoke(app, ["unlock", "lab", "cloop-lab-nope-1"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: no host cloop-lab-nope-1 in inventory lab")
    assert "Traceback" not in result.output


def test_unknown_inventory_is_one_clear_line() -> None:
    result = CliRunner().invoke(app, ["unlock", "nowhere"])
    assert result.exit_code == 1
    assert result.output.startswith("error: unknown inventory 'nowhere'")


def test_no_passphrase_source_without_a_terminal_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLOOP_FDE_PASSPHRASE", raising=False)
    monkeypatch.delenv("CLOOP_FDE_PASSPHRASE_FILE", raising=False)
    with pytest.raises(FdeError, match="no passphrase: set CLOOP_FDE_PASSPHRASE"):
        read_passphrase("lab")
    monkeypatch.setenv("CLOOP_FDE_PASSPHRASE_FILE", "/nonexistent/passphrase")
    with pytest.raises(FdeError, match="cannot read the passphrase file"):
        read_passphrase("lab")


@pytest.mark.claim("ENC-2")
def test_the_installer_is_valid_bash_and_takes_the_passphrase_only_on_stdin() -> None:
    script = render_installer("/dev/sda", Kdf(iter_time_ms=2000, memory_kib=1048576))
    assert subprocess.run(["bash", "-n"], input=script, check=False).returncode == 0
    text = script.decode()
    assert "--key-file=-" in text  # cryptsetup reads the passphrase from a pipe
    assert "luks2" in text
    assert "swap" not in text  # no swap volume at all
