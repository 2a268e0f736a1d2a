"""An app release end to end on a booted Debian 13 container: the operator-built wheelhouse
installs offline on the host's Python 3.13, migrations run, the sandboxed unit serves, the
health check gates the switch, and a broken release is rolled back.

The container (systemd as PID 1, only a loopback network) runs PostgreSQL 17 and the app, both
configured from the deploy's templates and data.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.deploy.secrets import scram_verifier, signing_key_pem
from infra.release.wheelhouse import Wheelhouse, build
from tests.infra.test_stack_app import APP, MAX_EXPOSURE
from tests.infra.test_stack_backup import DB, db_image, render

ROOT = APP["app_root"]
PASSWORDS = {DB["postgres_owner_role"]: secrets.token_urlsafe(24), DB["postgres_app_role"]: ""}
PASSWORDS[DB["postgres_app_role"]] = secrets.token_urlsafe(24)


@dataclass
class Container:
    root: Path
    leader: int

    def run(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "sh", "-c", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if check:
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result


def boot(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = os.environ | {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
    nspawn = subprocess.Popen(
        ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
         f"--directory={root}", "--private-network", "--console=passive",
         "--resolv-conf=off", "--drop-capability=CAP_AUDIT_CONTROL"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = Path(f"/proc/{nspawn.pid}/task/{nspawn.pid}/children")
        leader = children.read_text().split() if children.exists() else []
        if leader:
            state = subprocess.run(
                ["nsenter", "-t", leader[0], "-a", "systemctl", "is-system-running"],
                capture_output=True, text=True, check=False,
            ).stdout.strip()  # fmt: skip
            if state in {"running", "degraded"}:
                return nspawn, int(leader[0])
        time.sleep(0.3)
    nspawn.kill()
    raise TimeoutError("the container did not finish booting")


def place(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def configure(root: Path, wheels: Wheelhouse) -> None:
    """What tasks/postgres.py and tasks/app_release.py put on a host, for one host."""
    owner, app = DB["postgres_owner_role"], DB["postgres_app_role"]
    (root / "etc/systemd/system/systemd-networkd-wait-online.service").symlink_to("/dev/null")
    place(root, "/etc/hostname", "cloop-release-test\n")
    roles_sql = render(
        "postgres/roles.sql.j2",
        owner_role=owner,
        app_role=app,
        owner_verifier=scram_verifier(PASSWORDS[owner], owner),
        app_verifier=scram_verifier(PASSWORDS[app], app),
        database=DB["postgres_database"],
    )
    place(root, "/etc/cloop/db-roles.sql", roles_sql)
    conf = APP["app_config_dir"]
    common = {**APP, "app_listen": "127.0.0.1"}
    env = render(
        "app/app.env.j2",
        **common,
        app_role=app,
        owner_role=owner,
        app_password=PASSWORDS[app],
        owner_password=PASSWORDS[owner],
        db_address="127.0.0.1",
        db_port=5432,
        database=DB["postgres_database"],
    )
    place(root, f"{conf}/app.env", env, 0o640)
    place(root, f"{conf}/signing-keys/current.pem", signing_key_pem(), 0o640)
    unit = render(
        "app/cloop-app.service.j2",
        **common,
        app_forwarded_allow_ips="127.0.0.1",
        app_ip_allow=["localhost"],
    )
    place(root, "/etc/systemd/system/cloop-app.service", unit)
    script = render("app/cloop-release.sh.j2", **common, project_wheel=wheels.project_wheel)
    place(root, "/usr/local/sbin/cloop-release", script, 0o755)
    shutil.copytree(wheels.path, root / f"{ROOT.lstrip('/')}/releases/{wheels.release_id}/wheels")


@pytest.fixture(scope="module")
def wheelhouse() -> Wheelhouse:
    return build()


@pytest.fixture(scope="module")
def container(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Wheelhouse
) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("release") / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(db_image()), str(root)], check=True)
    configure(root, wheelhouse)
    nspawn, leader = boot(root)
    box = Container(root, leader)
    try:
        user = APP["app_user"]
        box.run(
            f"useradd --system --user-group --no-create-home --home-dir {ROOT}"
            f" --shell /usr/sbin/nologin {user}"
            f" && chgrp -R {user} /etc/cloop && chmod 750 /etc/cloop /etc/cloop/signing-keys"
            " && systemctl daemon-reload && systemctl enable cloop-app.service"
            " && systemctl start postgresql@17-main"
            " && runuser -u postgres -- psql -X -q -f - < /etc/cloop/db-roles.sql"
        )
        yield box
    finally:
        box.run("systemctl poweroff --force --force", check=False)  # throw-away: no shutdown
        try:
            nspawn.wait(timeout=30)
        except subprocess.TimeoutExpired:
            nspawn.terminate()
            nspawn.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def health(box: Container) -> str:
    probe = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/healthz').read())"
    return box.run(f'python3 -c "{probe}"', check=False).stdout


@pytest.fixture(scope="module")
def released(container: Container, wheelhouse: Wheelhouse) -> Container:
    result = container.run(f"cloop-release {wheelhouse.release_id}", check=False)
    journal = container.run("journalctl -u cloop-app.service --no-pager -n 40", check=False)
    assert f"release {wheelhouse.release_id} is live" in result.stdout, journal.stdout
    return container


@pytest.mark.claim("OPS-1")
def test_release_installs_offline_migrates_and_serves(
    released: Container, wheelhouse: Wheelhouse
) -> None:
    current = released.run(f"readlink {ROOT}/current").stdout.strip()
    assert current == f"{ROOT}/releases/{wheelhouse.release_id}"
    python = released.run(f"{current}/venv/bin/python -c 'import sys; print(sys.version)'")
    assert python.stdout.startswith("3.13")
    assert '"status":"ok"' in health(released)
    tables = released.run(
        "runuser -u postgres -- psql -X -A -t -d cloop -c"
        " \"SELECT count(*) FROM pg_tables WHERE schemaname = 'public'\""
    )
    assert int(tables.stdout) > 0  # migrations ran as the owner before the switch
    user = released.run(
        "ps -o user= -C uvicorn || ps -o user= -p $(systemctl show -P MainPID cloop-app)"
    )
    assert APP["app_user"] in user.stdout


@pytest.mark.claim("OPS-1")
def test_running_unit_exposure_is_at_most_2(released: Container) -> None:
    report = released.run("systemd-analyze security --no-pager cloop-app.service", check=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", report.stdout)
    assert match, report.stdout + report.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


@pytest.mark.claim("OPS-1")
def test_second_run_of_the_same_release_changes_nothing(
    released: Container, wheelhouse: Wheelhouse
) -> None:
    before = released.run("systemctl show -P MainPID cloop-app").stdout
    released.run(f"cloop-release {wheelhouse.release_id}")
    assert released.run("systemctl show -P MainPID cloop-app").stdout == before


@pytest.mark.claim("OPS-1")
def test_release_failing_its_health_check_is_rolled_back(
    released: Container, wheelhouse: Wheelhouse
) -> None:
    """A release whose app cannot start: the switch is undone and the old one serves again."""
    good = f"{ROOT}/releases/{wheelhouse.release_id}"
    broken = f"{ROOT}/releases/broken"
    released.run(
        f"cp -a {good} {broken} && find {broken}/venv/bin -maxdepth 1 -type f"
        f" -exec sed -i 's|{good}|{broken}|g' {{}} +"
        " && sed -i 's/^def create_app(/def create_app_gone(/'"
        f" {broken}/venv/lib/python3.13/site-packages/app/core/main.py"
    )
    result = released.run("cloop-release broken", check=False)
    assert result.returncode != 0
    assert "failed its health check" in result.stderr
    assert released.run(f"readlink {ROOT}/current").stdout.strip() == good
    assert '"status":"ok"' in health(released)
