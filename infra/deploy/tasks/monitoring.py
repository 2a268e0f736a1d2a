"""Monitoring (OPS-2): every host checks itself each minute and alerts the operator on a change.

A dependency-free program (templates/monitoring/cloop-healthcheck.py.j2) run by a systemd timer
checks the watched units of the host's groups, disk space, the certificate the edge serves, the
age of the last backup (db) and the app's health check as the edge reaches it. What it watches
and where alerts go is group_data/all.py `monitoring`; the lab points the webhook at its own
receiver with `monitoring_webhook_override`. Runs last, so the units it watches exist.
"""

import json
from collections.abc import Mapping
from typing import Any

from pyinfra.context import host, inventory
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from infra.deploy import host_data, template
from infra.deploy.hostdata import ALERT_TOKEN, alert_webhook, environment_name
from infra.deploy.secrets import secret
from infra.inventory import Group, load_group_data

PROGRAM = "/usr/local/sbin/cloop-healthcheck"
CONFIG = "/etc/cloop/monitoring.json"
TOKEN_FILE = "/etc/cloop/monitoring-webhook.token"  # noqa: S105 - a path, not a secret

watch = load_group_data().monitoring
groups = set(host.groups)


def mine(per_group: Mapping[Group, list[str]]) -> list[str]:
    """The items of the groups this host is in, in order, once each."""
    return list(
        dict.fromkeys(item for g, items in per_group.items() if g in groups for item in items)
    )


def certificates() -> list[dict[str, Any]]:
    """The certificates nginx serves on this edge, read over TLS as visitors get them."""
    return [
        {"server_name": name, "address": "127.0.0.1", "port": 443,
         "warning_days": watch.certificate_warning_days,
         "critical_days": watch.certificate_critical_days}
        for name in host.data.edge_domains
    ]  # fmt: skip


def backups() -> list[dict[str, Any]]:
    """The database's backup stanza, read with `pgbackrest info` as its owner."""
    stanza = host.data.pgbackrest_stanza
    info = ["runuser", "-u", "postgres", "--", "pgbackrest", f"--stanza={stanza}",
            "--output=json", "info"]  # fmt: skip
    return [{"stanza": stanza, "max_age_hours": watch.backup_max_age_hours, "info_command": info}]


def app_health() -> list[dict[str, Any]]:
    """Each app host as nginx reaches it (tasks/nginx.py): a dead app host is seen from here."""
    port, path = host.data.app_port, watch.http_path
    return [
        {"url": f"http://{app.data.private_ipv4}:{port}{path}", "timeout_s": 5}
        for app in inventory.get_group("app")
    ]


edge = "edge" in groups
config = {
    "host": host.name,
    "state_file": "/var/lib/cloop-healthcheck/state.json",
    "journal_socket": "/run/systemd/journal/socket",
    "webhook": {"url": alert_webhook(host_data()), "token_file": TOKEN_FILE, "timeout_s": 10},
    "units": mine(watch.units),
    "disk": {
        "paths": mine(watch.disk_paths),
        "warning_percent": watch.disk_warning_percent,
        "critical_percent": watch.disk_critical_percent,
    },
    "certificates": certificates() if edge else [],
    "backups": backups() if "db" in groups else [],
    "http": app_health() if edge else [],
}

apt.packages(
    name="monitoring: Python for the checks, openssl to read certificates",
    packages=["python3", "openssl"],
    no_recommends=True,
)
files.template(
    name="monitoring: the check program",
    src=template("monitoring/cloop-healthcheck.py.j2"),
    dest=PROGRAM,
    mode="755",
)
files.template(
    name="monitoring: what this host checks and where alerts go",
    src=template("monitoring/monitoring.json.j2"),
    dest=CONFIG,
    mode="600",
    create_remote_dir=True,
    config_json=json.dumps(config, indent=1, sort_keys=True),
)
files.template(
    name="monitoring: the webhook's bearer token",
    src=template("monitoring/webhook.token.j2"),
    dest=TOKEN_FILE,
    mode="600",
    token=secret(environment_name(host.name), ALERT_TOKEN),
)
units = [
    files.template(
        name=f"monitoring: {unit}",
        src=template(f"monitoring/{unit}.j2"),
        dest=f"/etc/systemd/system/{unit}",
        mode="644",
        program=PROGRAM,
        config_path=CONFIG,
        interval_s=watch.interval_s,
    )
    for unit in ("cloop-healthcheck.service", "cloop-healthcheck.timer")
]
systemd.daemon_reload(name="monitoring: systemd reads the units", _if=any_changed(*units))
systemd.service(
    name="monitoring: checks every minute",
    service="cloop-healthcheck.timer",
    running=True,
    enabled=True,
)
