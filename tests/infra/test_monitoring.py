"""The health-check program (templates/monitoring/cloop-healthcheck.py.j2) run here as on a host.

Each test renders the template, runs it as a process with its settings file and watches what
reaches the two alert channels: a journald-protocol socket (the journal's native datagrams) and
a webhook receiver (an HTTP server). What it checks is real: a TLS server with a certificate of
chosen expiry, a small tmpfs filled up, an HTTP health endpoint. Two boundaries are played by
scripts, as on a host that lacks them here: `systemctl is-active` and `pgbackrest info` (the
latter printing the JSON shape pgBackRest documents for `--output=json`).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jinja2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.standins import alerts

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = "monitoring/cloop-healthcheck.py.j2"
DOMAIN = "chat.cloop.example"
TOKEN = secrets.token_urlsafe(32)

PRIORITY = {"critical": "2", "warning": "4", "info": "5"}  # syslog levels in the journal
T = TypeVar("T")

pytestmark = pytest.mark.claim("OPS-2")


# -- The alert channels -------------------------------------------------------------------------


@dataclass
class Receiver:
    """The operator's paging endpoint (infra/standins/alerts.py) and its log of alerts."""

    url: str
    log: Path

    def received(self) -> list[dict[str, Any]]:
        return alerts.read_alerts(self.log)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    log = tmp_path / "alerts.jsonl"
    with alerts.running(TOKEN, log) as url:
        yield Receiver(url, log)


class Journal:
    """A socket speaking journald's native protocol: one datagram of KEY=value lines per entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    def entries(self) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return found
            found.append(dict(line.split("=", 1) for line in data.decode().splitlines()))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    sink = Journal(tmp_path / "journal.socket")
    yield sink
    sink.sock.close()


# -- The program, its settings and the boundaries it calls -----------------------------------------


@dataclass
class Host:
    """A rendered check program with its settings, fake systemctl and state file."""

    dir: Path
    config: dict[str, Any]
    journal: Journal
    receiver: Receiver

    def unit(self, name: str, state: str) -> None:
        (self.dir / "units" / name).write_text(state)

    def run(self, **changes: Any) -> subprocess.CompletedProcess[str]:
        path = self.dir / "monitoring.json"
        path.write_text(json.dumps(self.config | changes))
        env = os.environ | {"PATH": f"{self.dir / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        return subprocess.run(
            [sys.executable, str(self.dir / "cloop-healthcheck"), "--config", str(path)],
            capture_output=True, text=True, env=env, check=False, timeout=60,
        )  # fmt: skip

    def alerts(self) -> list[dict[str, Any]]:
        """The JSON lines the journal got since the last call, each checked against its fields."""
        out = []
        for entry in self.journal.entries():
            assert entry["SYSLOG_IDENTIFIER"] == "cloop-alert"
            alert: dict[str, Any] = json.loads(entry["MESSAGE"])
            assert entry["CLOOP_CHECK"] == alert["check"]
            assert entry["PRIORITY"] == PRIORITY[alert["severity"]]
            out.append(alert)
        return out

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.dir / "state.json").read_text())
        return state

    def expect(self, check: str, words: str, severity: str | None) -> None:
        """The check's message says ``words``; one alert of ``severity``, or none if None (ok)."""
        state = self.state()["checks"][check]
        assert words in state["message"]
        if severity is None:
            assert state["status"] == "ok"
            assert self.alerts() == []
        else:
            assert only(self.alerts())["severity"] == severity


FAKE_SYSTEMCTL = """#!/bin/sh
# systemctl show --property=... -- UNIT...: one block per unit, in order, as systemd prints them.
# A unit's file holds its ActiveState ("skipped": its start condition failed); none: not found.
[ "$1" = show ] || exit 2
sep=""
for unit in "$@"; do
  case "$unit" in show|-*) continue;; esac
  printf "$sep"; sep="\\n"
  if [ ! -f "{units}/$unit" ]; then
    printf "LoadState=not-found\\nActiveState=inactive\\nConditionResult=no\\n"
  elif [ "$(cat "{units}/$unit")" = skipped ]; then
    printf "LoadState=loaded\\nActiveState=inactive\\nConditionResult=no\\n"
  else
    printf "LoadState=loaded\\nActiveState=%s\\nConditionResult=yes\\n" "$(cat "{units}/$unit")"
  fi
done
"""


def render_program() -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - a Python program, not HTML
    )
    return env.get_template(TEMPLATE).render()


@pytest.fixture
def host(tmp_path: Path, journal: Journal, receiver: Receiver) -> Host:
    (tmp_path / "bin").mkdir()
    (tmp_path / "units").mkdir()
    systemctl = tmp_path / "bin" / "systemctl"
    systemctl.write_text(FAKE_SYSTEMCTL.format(units=tmp_path / "units"))
    systemctl.chmod(0o755)
    (tmp_path / "cloop-healthcheck").write_text(render_program())
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = {
        "host": "cloop-test-web-1",
        "state_file": str(tmp_path / "state.json"),
        "journal_socket": str(journal.path),
        "webhook": {"url": receiver.url, "token_file": str(tmp_path / "token"), "timeout_s": 5},
        "units": [],
        "disk": {"paths": [], "warning_percent": 80, "critical_percent": 90},
        "certificates": [],
        "backups": [],
        "http": [],
    }
    return Host(tmp_path, config, journal, receiver)


def only(items: list[T]) -> T:
    assert len(items) == 1, items
    return items[0]


# -- Service down -------------------------------------------------------------------------------


def test_stopped_service_alerts_once_and_its_recovery_is_announced(host: Host) -> None:
    host.config["units"] = ["nginx.service", "certbot.timer"]
    host.unit("nginx.service", "active")
    host.unit("certbot.timer", "active")
    assert host.run().returncode == 0
    assert host.alerts() == []  # all well: nothing to say
    assert host.receiver.received() == []

    host.unit("nginx.service", "failed")
    assert host.run().returncode == 0
    alert = only(host.alerts())
    assert alert["check"] == "unit:nginx.service"
    assert (alert["event"], alert["severity"], alert["previous"]) == ("problem", "critical", "ok")
    assert alert["host"] == "cloop-test-web-1"
    assert alert["message"] == "nginx.service is failed"
    assert only(host.receiver.received()) == alert

    host.run()
    assert host.alerts() == []  # still down: no second page
    assert len(host.receiver.received()) == 1

    host.unit("nginx.service", "active")
    host.run()
    recovery = only(host.alerts())
    assert (recovery["event"], recovery["severity"]) == ("recovery", "info")
    assert (recovery["status"], recovery["previous"]) == ("ok", "critical")
    assert host.receiver.received()[-1] == recovery
    assert host.state()["checks"]["unit:certbot.timer"]["status"] == "ok"


def test_a_service_missing_at_the_first_run_is_reported(host: Host) -> None:
    host.config["units"] = ["cloop-app.service"]
    host.run()
    alert = only(host.alerts())
    assert (alert["check"], alert["severity"]) == ("unit:cloop-app.service", "critical")
    assert alert["message"] == "cloop-app.service is not installed"


def test_a_unit_systemd_declined_to_start_is_a_warning(host: Host) -> None:
    """chrony in a container: its start condition (CAP_SYS_TIME) fails, so systemd skips it."""
    host.config["units"] = ["chrony.service"]
    host.unit("chrony.service", "skipped")
    host.run()
    alert = only(host.alerts())
    assert alert["severity"] == "warning"
    assert alert["message"] == (
        "chrony.service is inactive: its start condition does not hold on this host"
    )


# -- Disk filling -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs that a test can fill, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(disk: Path, percent: int) -> None:
    size = os.statvfs(disk).f_blocks * os.statvfs(disk).f_frsize
    (disk / "blob").write_bytes(b"\0" * (size * percent // 100))


def test_disk_filling_warns_then_turns_critical_then_recovers(host: Host, small_disk: Path) -> None:
    host.config["disk"]["paths"] = [str(small_disk)]
    host.run()
    assert host.alerts() == []
    fill(small_disk, 85)
    host.run()
    warning = only(host.alerts())
    assert (warning["check"], warning["severity"]) == (f"disk:{small_disk}", "warning")
    assert warning["message"] == f"{small_disk} is 85% full"
    fill(small_disk, 95)
    host.run()
    critical = only(host.alerts())
    assert (critical["severity"], critical["previous"]) == ("critical", "warning")
    (small_disk / "blob").unlink()
    host.run()
    assert only(host.alerts())["event"] == "recovery"


# -- Certificate near expiry --------------------------------------------------------------------


def certificate(directory: Path, days_left: float) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for DOMAIN that expires `days_left` days from now."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=90))
        .not_valid_after(now + dt.timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS server on loopback serving `tmp_path/cert.pem` (re-read per connection)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], tmp_path
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize(
    ("days_left", "severity", "words"),
    [(60, None, "expires in 60"), (14, "warning", "expires in 14"),
     (3, "critical", "expires in 3"), (-2, "critical", "expired 2")],
)  # fmt: skip
def test_certificate_near_expiry_is_detected_on_what_the_server_serves(
    host: Host, tls_server: tuple[int, Path], days_left: int, severity: str | None, words: str
) -> None:
    port, directory = tls_server
    certificate(directory, days_left + 0.05)
    host.config["certificates"] = [
        {"server_name": DOMAIN, "address": "127.0.0.1", "port": port,
         "warning_days": 21, "critical_days": 7}
    ]  # fmt: skip
    host.run()
    host.expect(f"certificate:{DOMAIN}", words, severity)


def test_unreachable_tls_server_is_critical(host: Host) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    host.config["certificates"] = [
        {"server_name": DOMAIN, "port": port, "warning_days": 21, "critical_days": 7}
    ]
    host.run()
    alert = only(host.alerts())
    assert alert["severity"] == "critical"
    assert "ConnectionRefusedError" in alert["message"]


# -- Backup missed ------------------------------------------------------------------------------


def fake_pgbackrest(directory: Path, stops_hours_ago: list[float], rc: int = 0) -> list[str]:
    """A stand-in for `pgbackrest --output=json info` printing the documented JSON shape."""
    now = time.time()
    backups = [
        {"label": f"b{i}", "type": "full" if i == 0 else "diff", "error": False,
         "timestamp": {"start": int(now - h * 3600 - 60), "stop": int(now - h * 3600)}}
        for i, h in enumerate(stops_hours_ago)
    ]  # fmt: skip
    info = [{"name": "cloop", "status": {"code": 0 if backups else 2, "message": "ok"},
             "backup": backups}]  # fmt: skip
    script = directory / "pgbackrest-info"
    script.write_text(
        f"#!/bin/sh\n[ {rc} = 0 ] || {{ echo 'ERROR: [055]: unable to load info file' >&2; "
        f"exit {rc}; }}\necho '{json.dumps(info)}'\n"
    )
    script.chmod(0o755)
    return [str(script)]


@pytest.mark.parametrize(
    ("hours_ago", "rc", "severity", "words"),
    [([50.0, 2.0], 0, None, "ended 2.0 h ago"),
     ([74.0, 30.0], 0, "critical", "ended 30.0 h ago"),
     ([], 0, "critical", "no backup of cloop exists"),
     ([2.0], 55, "critical", "pgbackrest info failed: ERROR: [055]")],
)  # fmt: skip
def test_missed_backup_is_detected(
    host: Host, hours_ago: list[float], rc: int, severity: str | None, words: str
) -> None:
    command = fake_pgbackrest(host.dir, hours_ago, rc)
    host.config["backups"] = [{"stanza": "cloop", "max_age_hours": 26, "info_command": command}]
    host.run()
    host.expect("backup:cloop", words, severity)


# -- The app's health check ---------------------------------------------------------------------


def test_app_health_check_failure_alerts_and_recovers(host: Host) -> None:
    answer = {"code": 200}

    class App(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer["code"] if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    host.config["http"] = [{"url": url, "timeout_s": 5}]
    try:
        host.run()
        assert host.alerts() == []
        answer["code"] = 503
        host.run()
        alert = only(host.alerts())
        assert (alert["check"], alert["severity"]) == (f"http:{url}", "critical")
        assert "503" in alert["message"]
        answer["code"] = 200
        host.run()
        assert only(host.alerts())["event"] == "recovery"
    finally:
        server.shutdown()
        server.server_close()


# -- Delivery and robustness --------------------------------------------------------------------


def test_refused_alerts_wait_and_are_delivered_in_order(host: Host) -> None:
    """The endpoint refuses a wrong token (401): alerts stay queued until it accepts them."""
    host.config["units"] = ["nginx.service"]
    host.unit("nginx.service", "active")
    host.run()
    (host.dir / "token").write_text("not-the-token\n")
    host.unit("nginx.service", "failed")
    first = host.run()
    assert first.returncode == 1  # the alert path is broken: the unit shows as failed
    assert "webhook delivery failed, will retry: HTTP Error 401" in first.stderr
    host.unit("nginx.service", "active")
    assert host.run().returncode == 1
    assert [a["event"] for a in host.state()["outbox"]] == ["problem", "recovery"]
    assert host.receiver.received() == []
    (host.dir / "token").write_text(TOKEN + "\n")
    assert host.run().returncode == 0
    assert [a["event"] for a in host.receiver.received()] == ["problem", "recovery"]
    assert host.state()["outbox"] == []


def test_a_broken_check_is_an_alert_and_the_others_still_run(host: Host, tmp_path: Path) -> None:
    host.config["disk"]["paths"] = [str(tmp_path / "missing"), str(tmp_path)]
    host.config["units"] = ["chrony.service"]
    result = host.run()
    assert result.returncode == 0, result.stderr
    alerts = {a["check"]: a for a in host.alerts()}
    assert "FileNotFoundError" in alerts[f"disk:{tmp_path / 'missing'}"]["message"]
    assert alerts["unit:chrony.service"]["severity"] == "critical"
    assert f"disk:{tmp_path}" in host.state()["checks"]


def test_bad_settings_give_one_line_and_no_traceback(host: Host) -> None:
    host.config.pop("units")
    result = host.run()
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "missing setting(s) units" in result.stderr
    assert "Traceback" not in result.stderr


# -- The program itself -------------------------------------------------------------------------


def test_the_program_needs_only_the_standard_library(tmp_path: Path) -> None:
    """It runs on the hosts' bare Python: `-I -S` hides site-packages, so any import of a
    third-party module fails here as it would there. Also lint- and type-clean."""
    program = tmp_path / "cloop_healthcheck.py"
    program.write_text(render_program())
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(program), "--config", str(tmp_path / "none.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("cloop-healthcheck: cannot read")
    lint = ["ruff", "check", "--config", str(REPO / "pyproject.toml"), str(program)]
    for tool in (lint, ["mypy", "--strict", str(program)]):
        checked = subprocess.run(
            [sys.executable, "-m", *tool], capture_output=True, text=True, cwd=tmp_path,
            check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
