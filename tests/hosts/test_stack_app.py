"""App hosts: the release runs as its own user in a sandboxed unit and answers its health
check on the private address (OPS-1)."""

from __future__ import annotations

import re

import pytest

from tests.hosts.conftest import connect, data_of, hosts


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "app_name" in metafunc.fixturenames:
        names = [h.name for h in hosts() if "app" in h.roles]
        metafunc.parametrize("app_name", names, ids=names)


@pytest.mark.claim("OPS-1")
def test_app_runs_as_its_own_user(app_name: str) -> None:
    host, data = connect(app_name), data_of(app_name)
    assert host.service("cloop-app").is_running
    pid = host.check_output("systemctl show -P MainPID cloop-app")
    assert host.check_output(f"ps -o user= -p {pid}") == data["app_user"]


@pytest.mark.claim("OPS-1")
def test_app_unit_exposure_at_most_2(app_name: str) -> None:
    out = connect(app_name).check_output("systemd-analyze security --no-pager cloop-app.service")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match
    assert float(match.group(1)) <= 2.0


def test_app_answers_its_health_check(app_name: str) -> None:
    host, data = connect(app_name), data_of(app_name)
    url = f"http://{data['private_ipv4']}:{data['app_port']}{data['app_health_path']}"
    out = host.check_output(
        f"python3 -c \"import urllib.request as u; print(u.urlopen('{url}').status)\""
    )
    assert out == "200"


@pytest.mark.claim("GDPR-17", "LOG-3")
def test_daily_jobs_scheduled_on_the_first_app_host_and_they_run(app_name: str) -> None:
    """The privacy purge (erasure within 30 days) and the audit purge run once a day; started
    now, each finishes successfully with the app's settings inside its sandbox."""
    host, data = connect(app_name), data_of(app_name)
    first = next(h.name for h in hosts() if "app" in h.roles)
    for unit in data["app_jobs"]:
        timer = host.service(f"{unit}.timer")
        assert (timer.is_enabled, timer.is_running) == ((True, True) if app_name == first
                                                        else (False, False))  # fmt: skip
        if app_name == first:
            host.run_expect([0], f"systemctl start {unit}.service")
            assert host.check_output(f"systemctl show -P Result {unit}.service") == "success"
