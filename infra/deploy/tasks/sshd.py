"""sshd: keys only, no root password login, no forwarding, modern algorithms (dev-sec)."""

from pyinfra.context import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from infra.deploy import template

banner = files.template(
    name="sshd: login banner",
    src=template("issue_net.j2"),
    dest="/etc/issue.net",
    mode="644",
)
files.template(
    name="sshd: console banner", src=template("issue_net.j2"), dest="/etc/issue", mode="644"
)
config = files.template(
    name="sshd: hardened configuration",
    src=template("sshd_config.j2"),
    dest="/etc/ssh/sshd_config",
    mode="600",
    port=host.data.sshd_port,
    host_key_types=host.data.sshd_host_key_types,
    kex=host.data.sshd_kex,
    ciphers=host.data.sshd_ciphers,
    macs=host.data.sshd_macs,
    settings=host.data.sshd_settings | host.data.get("sshd_settings_override", {}),
    allow_users=host.data.sshd_allow_users,
)
server.shell(
    name="sshd: the new configuration is valid",
    commands=["sshd -t"],
    _if=config.did_change,
)
systemd.service(name="sshd: enabled and running", service="ssh.service", running=True, enabled=True)
systemd.service(
    name="sshd: reload the changed configuration",
    service="ssh.service",
    reloaded=True,
    _if=any_changed(config, banner),
)
jail = files.template(
    name="sshd: fail2ban bans repeated failures",
    src=template("fail2ban_jail.local.j2"),
    dest="/etc/fail2ban/jail.local",
    mode="644",
    port=host.data.sshd_port,
    ignore=host.data.get("fail2ban_ignore", []),
)
systemd.service(
    name="sshd: fail2ban enabled and running",
    service="fail2ban.service",
    running=True,
    enabled=True,
)
systemd.service(
    name="sshd: fail2ban restarted on change",
    service="fail2ban.service",
    restarted=True,
    _if=jail.did_change,
)
