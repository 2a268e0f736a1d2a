"""Accounts and files: a deploy user with sudo, password rules, no core dumps, tight modes."""

from pyinfra.context import host
from pyinfra.operations import files, server

from infra.deploy import host_data, template
from infra.deploy.hostdata import operator_keys

user: str = host.data.deploy_user
server.user(  # noqa: S604 (a login shell, not a subprocess)
    name=f"accounts: {user}, key only (password locked)",
    user=user,
    shell="/bin/bash",
    create_home=True,
    home=f"/home/{user}",
    groups=["sudo"],
    public_keys=operator_keys(host_data()),
)
files.directory(name=f"accounts: /home/{user} private", path=f"/home/{user}", mode="750")
files.template(
    name=f"accounts: {user} may use sudo",
    src=template("sudoers_deploy.j2"),
    dest=f"/etc/sudoers.d/{user}",
    mode="440",
    account=user,
)
for key, value in host.data.login_defs.items():
    files.line(
        name=f"accounts: login.defs {key} {value}",
        path="/etc/login.defs",
        line=rf"^#?\s*{key}\s.*",
        replace=f"{key}\t{value}",
    )
files.template(
    name="accounts: password quality",
    src=template("pwquality.conf.j2"),
    dest="/etc/security/pwquality.conf",
    mode="644",
    settings=host.data.pwquality,
)
files.template(
    name="accounts: no core dumps (limits)",
    src=template("limits_coredump.conf.j2"),
    dest="/etc/security/limits.d/90-cloop-coredump.conf",
    mode="644",
)
files.template(
    name="accounts: no core dumps (systemd)",
    src=template("coredump.conf.j2"),
    dest="/etc/systemd/coredump.conf.d/90-cloop.conf",
    mode="644",
    create_remote_dir=True,
)
files.template(
    name="accounts: static host names",
    src=template("hosts.j2"),
    dest="/etc/hosts",
    mode="644",
    hostname=host.name,
    static_hosts=host.data.static_hosts,
)
for path, (owner, group, mode) in host.data.file_modes.items():
    files.file(name=f"accounts: {path} {mode}", path=path, user=owner, group=group, mode=mode)
for path, (owner, group, mode) in host.data.directory_modes.items():
    files.directory(name=f"accounts: {path} {mode}", path=path, user=owner, group=group, mode=mode)
