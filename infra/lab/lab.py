"""`lab up | verify | down`: Helsinki in a box, provisioned and deployed as production is.

`up` builds (or reuses) the rootfs, starts the lab's package mirror and egress probe, provisions
the `lab` inventory through the Hetzner API stand-in (whose lab backend boots a container per
server), deploys with pyinfra and verifies with testinfra. Each step prints as it starts and a
failure names its step (and host); `down` removes what the lab state records, nothing else.
"""

from __future__ import annotations

import fcntl
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra import inventory
from infra.deploy.run import DeployResult, deploy
from infra.lab import machine, standins, state
from infra.lab.backend import LabBackend
from infra.lab.lynis import hardening_index
from infra.lab.machine import LabError
from infra.lab.paths import CACHE, GROUP_DATA, STATE_DIR
from infra.lab.rootfs import ensure_rootfs
from infra.provision import provision
from infra.provision.buckets import Credentials
from infra.standins.hetzner import running
from infra.verify import VerifyResult, verify

INVENTORY = "lab"
KEY = STATE_DIR / "id_ed25519"
ALERTS_LOG = STATE_DIR / "alerts.jsonl"
# The S3 stand-in accepts any key pair: fixed ones keep re-deploys free of changes.
_HEADER = '"""Written by `lab up` (infra/lab/lab.py): the running lab\'s values."""\n\n'
ACME_HOST = "acme-v02.api.letsencrypt.org"  # what pebble stands in for
S3_CREDENTIALS = Credentials("cloop-lab-access", "cloop-lab-secret-not-a-secret")


class StepError(Exception):
    """A lab step failed: `step` names it, the message says what and on which host."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"lab {step} failed: {message}")
        self.step = step


@dataclass
class Progress:
    """Prints `==> [n] step` lines and keeps each step's duration."""

    out: Callable[[str], None] = print
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        self.out(f"==> [{len(self.timings) + 1}] {name}: {what}")
        started = time.monotonic()
        try:
            yield
        except StepError:
            raise
        except Exception as exc:
            raise StepError(name, str(exc) or type(exc).__name__) from exc
        self.timings[name] = time.monotonic() - started
        self.out(f"    done in {self.timings[name]:.1f} s")


@dataclass(frozen=True)
class Stack:
    """The stand-ins the stack's roles reach: object storage (db) and ACME (edge)."""

    s3: standins.Endpoint
    acme: standins.Endpoint


@dataclass
class UpResult:
    deploy: DeployResult
    verify: VerifyResult | None
    lynis_index: int | None
    timings: dict[str, float]


def up(progress: Progress, run_verify: bool = True) -> UpResult:
    """Bring the lab up from nothing (or from a cached rootfs); one `up` at a time."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / "up.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StepError("start", "another `lab up` is running on this machine") from None
        if state.read().get("hosts"):
            raise StepError("start", "the lab is already up (./scripts/lab down removes it)")
        return _up(progress, run_verify)


def _up(progress: Progress, run_verify: bool) -> UpResult:
    with progress.step("rootfs", "Debian 13 image (mmdebstrap, cached)"):
        path, built = ensure_rootfs()
        progress.out(f"    {'built' if built else 'cached'}: {path}")
    with progress.step("services", "lab mirror, egress probe, S3 and ACME on loopback"):
        ensure_key()
        mirror_port = start_mirror()
        probe_port = start_probe()
        alerts_port = start_alerts()
        acme_http_port = machine.free_port()
        stack = Stack(
            standins.start_s3(lab_inventory(), S3_CREDENTIALS), standins.start_acme(acme_http_port)
        )
    with progress.step("provision", "servers through the Hetzner API stand-in"):
        provision_lab(progress.out)
        for host in lab_inventory().hosts:
            if "edge" in host.roles:  # pebble validates HTTP-01 on the edge's port 80
                machine.forward(host.name, acme_http_port, 80)
    with progress.step("deploy", "the whole stack with pyinfra (base, db, edge, app)"):
        write_group_data(mirror_port, probe_port, alerts_port)
        write_stack_data(stack)
        result = deploy(INVENTORY, STATE_DIR / "deploy.log", [GROUP_DATA])
        progress.out(f"    {result.operations} operations, {result.changed} changed")
    checked, index = None, None
    if run_verify:
        with progress.step("verify", "testinfra suite against the lab"):
            checked = run_checks()
            progress.out(f"    {checked.passed} checks passed, {checked.skipped} waived")
        index = audit(progress)
    return UpResult(result, checked, index, progress.timings)


def audit(progress: Progress) -> int:
    """Lynis on the first lab host: its hardening index (goal: at least 80)."""
    name, entry = sorted(inventory.read_state(inventory.state_path(INVENTORY))["hosts"].items())[0]
    with progress.step("audit", f"Lynis on {name}"):
        index = hardening_index(name, int(entry["ssh_port"]), str(KEY))
        progress.out(f"    Lynis hardening index: {index} (goal >= 80)")
    return index


def run_checks() -> VerifyResult:
    if not state.read().get("hosts"):
        raise LabError("the lab is not up (./scripts/lab up starts it)")
    result = verify(INVENTORY, STATE_DIR / "verify.log", [GROUP_DATA])
    if not result.ok:
        raise RuntimeError(f"{result.failed} check(s) failed, see {result.log}")
    return result


def ensure_key() -> None:
    """The lab's operator key, made at run time (never committed)."""
    if not KEY.exists():
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cloop-lab", "-f", str(KEY)],
            check=True,
        )


def start_mirror() -> int:
    port_file = STATE_DIR / "mirror.port"
    port_file.unlink(missing_ok=True)
    machine.spawn(
        [sys.executable, "-m", "infra.lab.mirror", "--cache", str(CACHE / "mirror"),
         "--port-file", str(port_file)],
        STATE_DIR / "mirror.log", "mirror lab",
    )  # fmt: skip
    machine.wait_for(port_file.exists, 10, "the lab mirror did not start")
    return int(port_file.read_text())


def start_probe() -> int:
    """A listener outside every allow-list: lab hosts must not reach it (egress checks)."""
    root = STATE_DIR / "probe"
    root.mkdir(exist_ok=True)
    port = machine.free_port()
    machine.spawn(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root),
         str(port)],
        STATE_DIR / "probe.log", "probe lab",
    )  # fmt: skip
    machine.wait_for(lambda: machine.port_open(port), 10, "the egress probe did not start")
    return port


def start_alerts() -> int:
    """The operator's paging endpoint (OPS-2): hosts' alerts land in .lab/alerts.jsonl."""
    port_file = STATE_DIR / "alerts.port"
    port_file.unlink(missing_ok=True)
    machine.spawn(
        [sys.executable, "-m", "infra.standins.alerts", "--environment", INVENTORY,
         "--log", str(ALERTS_LOG), "--port-file", str(port_file)],
        STATE_DIR / "alerts.log", "alerts lab",
    )  # fmt: skip
    machine.wait_for(port_file.exists, 10, "the lab's alert receiver did not start")
    return int(port_file.read_text())


def lab_inventory() -> inventory.Inventory:
    return inventory.load(INVENTORY).with_data(ssh_keys={"operator": f"{KEY}.pub"})


def provision_lab(out: Callable[[str], None]) -> None:
    inv = lab_inventory()
    data = inv.data
    backend = LabBackend(data.location, data.network_zone, data.private_network.subnet)
    token = secrets.token_urlsafe(32)
    with running(token, backend) as (endpoint, _state):
        provision(
            inv, token=token, endpoint=endpoint, state_path=inventory.state_path(INVENTORY),
            out=lambda line: out("    " + line.replace("\n", "\n    ")),
            ssh_port=lambda name: backend.ports[name],
        )  # fmt: skip


def write_group_data(mirror_port: int, probe_port: int, alerts_port: int) -> None:
    """The lab's own values on top of group_data: its mirror, resolver, stand-ins, key."""
    data = lab_inventory().data
    gateway = machine.SLIRP_GATEWAY
    hook = urlsplit(data.monitoring.webhook_url).hostname
    names = sorted(
        {ep.host for sp in data.subprocessors for ep in sp.endpoints} | {hook or ""} - {""}
    )
    values: dict[str, Any] = {
        "apt_mirror_override": f"http://{gateway}:{mirror_port}/debian",
        "apt_security_mirror_override": f"http://{gateway}:{mirror_port}/debian-security",
        "dns_resolvers": [machine.SLIRP_DNS],
        # subprocessors' names lead to the operator's machine, where their stand-ins run
        "static_hosts": dict.fromkeys(names, gateway),
        "egress_blocked_probes": [f"{gateway}:{probe_port}"],
        "egress_probe_operator_view": {f"{gateway}:{probe_port}": f"127.0.0.1:{probe_port}"},
        "operator_public_keys": [Path(f"{KEY}.pub").read_text().strip()],
        # every forwarded connection comes from the slirp gateway: never penalise or ban it
        "sshd_settings_override": {"PerSourcePenalties": "no"},
        "fail2ban_ignore": [gateway],
        "ssh_user": "root",
        "ssh_key": str(KEY),
        "ssh_known_hosts_file": str(machine.KNOWN_HOSTS),
        "ssh_strict_host_key_checking": "yes",
        # alerts go to the lab's receiver on the operator's machine (OPS-2)
        "monitoring_webhook_override": f"http://{gateway}:{alerts_port}/alerts",
        "monitoring_alerts_log": str(ALERTS_LOG),
    }
    GROUP_DATA.mkdir(parents=True, exist_ok=True)
    (GROUP_DATA / "debian13.py").write_text(_HEADER + _assignments(values))


def write_stack_data(stack: Stack) -> None:
    """The roles' lab values: S3 (db and app hosts) and ACME (edge) stand-ins under their real
    names, their ports allowed out."""
    gateway, inv = machine.SLIRP_GATEWAY, lab_inventory()
    edge = {
        "acme_directory": standins.acme_directory(stack.acme),
        "acme_ca_bundle": str(stack.acme.ca_file),
        "nginx_listen_addresses": ["127.0.0.1", machine.SLIRP_GUEST],
    }
    common = {
        "s3_endpoint_override": standins.s3_endpoint(inv, stack.s3),
        "s3_ca_file": str(stack.s3.ca_file),
        "s3_access_key_override": S3_CREDENTIALS.access_key,
        "s3_secret_key_override": S3_CREDENTIALS.secret_key,
        # each with the purpose of the endpoint it stands in for (the subprocessor data)
        "egress_extra": [
            {
                "address": gateway,
                "port": stack.s3.port,
                "purpose": _purpose(inv.data.object_storage.host),
            },
            {"address": gateway, "port": stack.acme.port, "purpose": _purpose(ACME_HOST)},
        ],
    }
    (GROUP_DATA / "edge.py").write_text(_HEADER + _assignments(edge))
    with (GROUP_DATA / "debian13.py").open("a") as out:
        out.write(_assignments(common))


def _purpose(endpoint_host: str) -> str:
    data = lab_inventory().data
    return next(
        ep.purpose for sp in data.subprocessors for ep in sp.endpoints if ep.host == endpoint_host
    )


def _assignments(values: dict[str, Any]) -> str:
    return "".join(f"{key} = {value!r}\n" for key, value in values.items())


def down(out: Callable[[str], None] = print) -> None:
    """Stop and remove everything the lab state records (and only that).

    A host that fails to come down is reported and the rest is still removed; the first such
    error is raised at the end so that the caller sees it."""
    recorded = state.read()
    failures: list[machine.LabError] = []
    for name in sorted(recorded.get("hosts", {})):
        out(f"==> stopping {name}")
        try:
            machine.destroy(name)
        except machine.LabError as exc:
            out(f"error: {exc}")
            failures.append(exc)
    recorded = state.read()
    for record in recorded.get("processes", []):
        out(f"==> stopping {record['what']} (pid {record['pid']})")
        state.stop(record)
    for mount in recorded.get("mounts", []):
        if Path(mount).is_mount():
            subprocess.run(["umount", mount], check=False)
    for ns in recorded.get("netns", []):
        if Path(f"/run/netns/{ns}").exists():
            out(f"==> removing network namespace {ns}")
            subprocess.run(["ip", "netns", "del", ns], check=False)
    for directory in recorded.get("host_dirs", []):
        shutil.rmtree(directory, ignore_errors=True)
    state.STATE_FILE.unlink(missing_ok=True)
    inventory.state_path(INVENTORY).unlink(missing_ok=True)
    shutil.rmtree(GROUP_DATA, ignore_errors=True)
    if failures:
        raise failures[0]
    out("==> lab is down")
