"""Automatic security updates: unattended-upgrades from the security archive, daily."""

from pyinfra.context import host
from pyinfra.operations import files, systemd

from infra.deploy import template

files.template(
    name="upgrades: daily list refresh and upgrade",
    src=template("apt_auto_upgrades.j2"),
    dest="/etc/apt/apt.conf.d/20auto-upgrades",
    mode="644",
)
files.template(
    name="upgrades: security and stable updates only",
    src=template("apt_unattended_upgrades.j2"),
    dest="/etc/apt/apt.conf.d/50unattended-upgrades",
    mode="644",
    reboot=host.data.get("upgrades_reboot", False),
    reboot_time=host.data.get("upgrades_reboot_time", "04:00"),
)
for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
    systemd.service(name=f"upgrades: {timer} on", service=timer, running=True, enabled=True)
systemd.service(
    name="upgrades: unattended-upgrades enabled",
    service="unattended-upgrades.service",
    running=None,
    enabled=True,
)
