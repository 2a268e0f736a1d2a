"""testinfra against ANY inventory: hosts, their data and the waivers.

`cloop-ops verify INVENTORY` (infra/verify.py) runs this folder with the inventory named in
CLOOP_VERIFY_INVENTORY; without it there are no hosts to check and the folder is not collected
(the lab test, tests/infra/test_lab.py, runs it against the lab). Every check is parametrized
per host and per data item, so a failure names both. Per-host facts that many checks read
(`sshd -T`, sysctl values, installed packages, mounts) are fetched once per host.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import testinfra

from infra.inventory import Host, Inventory, load
from infra.verify import ENV_INVENTORY, extra_group_data, host_data

HERE = Path(__file__).parent
NAME = os.environ.get(ENV_INVENTORY, "")
if not NAME:
    collect_ignore_glob = ["test_*.py"]

CONTROL_DIR = tempfile.mkdtemp(prefix="cloop-ssh-")  # one multiplexed connection per host
WAIVERS: list[dict[str, str]] = tomllib.loads((HERE / "waivers.toml").read_text())["waiver"]


@cache
def inventory() -> Inventory:
    return load(NAME)


@cache
def data_of(name: str) -> dict[str, Any]:
    host = next(h for h in inventory().hosts if h.name == name)
    return host_data(inventory(), host, extra_group_data())


def hosts() -> list[Host]:
    return inventory().hosts


# Data items each check is parametrized over, per host: argument name -> items from host data.
ITEMS: dict[str, Callable[[dict[str, Any]], list[Any]]] = {
    "sshd_option": lambda d: sorted(d["sshd_settings"] | d.get("sshd_settings_override", {})),
    "sysctl_key": lambda d: sorted(d["sysctl_settings"]),
    "module": lambda d: sorted(d["blacklisted_modules"]),
    "package_present": lambda d: sorted(d["packages_present"]),
    "package_absent": lambda d: sorted(d["packages_absent"]),
    "login_def": lambda d: sorted(d["login_defs"]),
    "pwquality_key": lambda d: sorted(d["pwquality"]),
    "file_path": lambda d: sorted(d["file_modes"]) + sorted(d["directory_modes"]),
    "journald_key": lambda d: sorted(d["journald"]),
    "tmp_mount": lambda d: [(p, o) for p in ("/tmp", "/dev/shm") for o in d["tmp_mount_options"]],
    "blocked_probe": lambda d: list(d["egress_blocked_probes"]),
    "tool_default": lambda d: sorted(d["package_tool_defaults"]),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "host_name" not in metafunc.fixturenames:
        return
    item_args = [a for a in ITEMS if a in metafunc.fixturenames]
    if not item_args:
        names = [h.name for h in hosts()]
        metafunc.parametrize("host_name", names, ids=names)
        return
    (arg,) = item_args
    cases = [(h.name, item) for h in hosts() for item in ITEMS[arg](data_of(h.name))]
    ids = [f"{h}-{_id(item)}" for h, item in cases]
    metafunc.parametrize(("host_name", arg), cases, ids=ids)


def _id(item: Any) -> str:
    return ":".join(map(str, item)) if isinstance(item, tuple) else str(item)


@cache
def connect(name: str) -> Any:
    """A testinfra host over the system ssh (one multiplexed connection per host)."""
    data = data_of(name)
    user = data.get("ssh_user", "root")
    target = f"ssh://{user}@{data['ssh_hostname']}:{data.get('ssh_port', 22)}"
    extra = ["-o BatchMode=yes", f"-o ControlPath={CONTROL_DIR}/%C"]
    if data.get("ssh_known_hosts_file"):
        extra += [f"-o UserKnownHostsFile={shlex.quote(data['ssh_known_hosts_file'])}"]
        extra += ["-o StrictHostKeyChecking=yes"]
    kwargs: dict[str, Any] = {"ssh_extra_args": " ".join(extra), "sudo": user != "root"}
    if data.get("ssh_key"):
        kwargs["ssh_identity_file"] = data["ssh_key"]
    return testinfra.get_host(target, **kwargs)


@pytest.fixture
def host(host_name: str) -> Any:
    return connect(host_name)


@pytest.fixture
def data(host_name: str) -> dict[str, Any]:
    return data_of(host_name)


@pytest.fixture
def roles(host_name: str) -> frozenset[str]:
    return next(h.roles for h in hosts() if h.name == host_name)


@cache
def virtualization(name: str) -> str:
    out: str = connect(name).run("systemd-detect-virt --container || true").stdout.strip()
    return out or "none"


@pytest.fixture
def waive(request: pytest.FixtureRequest, host_name: str) -> Callable[[str], None]:
    """`waive(item)` skips, with the waiver's reason, a check that cannot hold on this host."""

    def apply(item: str = "") -> None:
        test = request.node.originalname
        for waiver in WAIVERS:
            matches = not waiver.get("match") or item.startswith(tuple(waiver["match"].split("|")))
            where = waiver["where"] == "container" and virtualization(host_name) != "none"
            if waiver["check"] == test and matches and where:
                pytest.skip(f"waived ({virtualization(host_name)}): {waiver['reason']}")

    return apply


@cache
def sshd_lines(name: str) -> list[tuple[str, str]]:
    """`sshd -T`: the configuration sshd really uses (keys lower-case, some repeated)."""
    out = connect(name).check_output("sshd -T")
    return [(k, v) for k, v in (line.split(" ", 1) for line in out.splitlines() if " " in line)]


def sshd_effective(name: str) -> dict[str, str]:
    return dict(sshd_lines(name))


@cache
def sysctl_values(name: str) -> dict[str, str]:
    out = connect(name).check_output("sysctl -a 2>/dev/null || true")
    return dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)


@cache
def installed(name: str) -> frozenset[str]:
    out = connect(name).check_output("dpkg-query -W -f='${Package} ${db:Status-Status}\\n'")
    return frozenset(p.split()[0] for p in out.splitlines() if p.endswith(" installed"))


@cache
def mount_options(name: str) -> dict[str, set[str]]:
    out = connect(name).check_output("findmnt -rn -o TARGET,OPTIONS")
    return {t: set(o.split(",")) for t, o in (line.split(" ", 1) for line in out.splitlines())}


def pytest_sessionfinish() -> None:
    """Close the multiplexed connections this run opened, then their directory."""
    for socket_path in Path(CONTROL_DIR).iterdir():
        subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "x"],
                       capture_output=True, check=False)  # fmt: skip
    shutil.rmtree(CONTROL_DIR, ignore_errors=True)
