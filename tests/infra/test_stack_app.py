"""The app's systemd unit, rendered from the deploy's template, is sandboxed tightly enough.

`systemd-analyze security --offline` scores the unit file itself; the lab's testinfra suite
scores the running unit on a host.
"""

from __future__ import annotations

import re
import runpy
import subprocess
from pathlib import Path

import jinja2
import pytest

from tests.conftest import REPO

APP = {
    name: value
    for name, value in runpy.run_path(str(REPO / "inventories/group_data/app.py")).items()
    if not name.startswith("_")
}
MAX_EXPOSURE = 2.0


def render_unit() -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - configuration files, not HTML
    )
    return env.get_template("app/cloop-app.service.j2").render(
        **APP,
        app_listen="10.42.1.2",
        app_forwarded_allow_ips="10.42.1.3",
        app_ip_allow=["localhost", "10.42.0.0/16", "203.0.113.7"],
    )


def exposure(unit: Path) -> float:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


@pytest.mark.claim("OPS-1")
def test_app_unit_exposure_is_at_most_2(tmp_path: Path) -> None:
    unit = tmp_path / "cloop-app.service"
    unit.write_text(render_unit())
    assert exposure(unit) <= MAX_EXPOSURE


@pytest.mark.claim("OPS-1")
def test_scoring_would_catch_a_loosened_unit(tmp_path: Path) -> None:
    """The control: the same unit without its sandbox scores far worse."""
    loose = "\n".join(
        line
        for line in render_unit().splitlines()
        if not line.startswith(("Protect", "Private", "Restrict", "SystemCall", "Capability"))
    )
    unit = tmp_path / "cloop-app.service"
    unit.write_text(loose)
    assert exposure(unit) > MAX_EXPOSURE


def test_unit_runs_as_its_own_user_without_privileges() -> None:
    unit = render_unit()
    for directive in (
        f"User={APP['app_user']}",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
    ):
        assert directive in unit
