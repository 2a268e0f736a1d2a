"""Time: chrony against the allow-listed (Hetzner) time servers only."""

from pyinfra.context import host
from pyinfra.operations import files, systemd

from infra.deploy import template
from infra.deploy.hostdata import ntp_servers

config = files.template(
    name="time: chrony with the allow-listed servers",
    src=template("chrony.conf.j2"),
    dest="/etc/chrony/chrony.conf",
    mode="644",
    servers=ntp_servers(host.name, host.groups),
)
systemd.service(name="time: chrony enabled", service="chrony.service", running=None, enabled=True)
systemd.service(
    name="time: chrony restarted on change",
    service="chrony.service",
    restarted=True,
    _if=config.did_change,
)
