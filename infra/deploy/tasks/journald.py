"""Logging: a persistent journal kept for 12 months (LOG-3)."""

from pyinfra.context import host
from pyinfra.operations import files, systemd

from infra.deploy import template

retention = files.template(
    name="journald: persistent, 12-month retention",
    src=template("journald_retention.conf.j2"),
    dest="/etc/systemd/journald.conf.d/90-cloop-retention.conf",
    mode="644",
    create_remote_dir=True,
    settings=host.data.journald,
)
files.directory(
    name="journald: persistent journal directory",
    path="/var/log/journal",
    user="root",
    group="systemd-journal",
    mode="2755",
)
systemd.service(
    name="journald: restarted on change",
    service="systemd-journald.service",
    restarted=True,
    _if=retention.did_change,
)
