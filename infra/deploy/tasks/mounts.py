"""Temporary filesystems: /tmp and /dev/shm hold no devices, setuid files or programs."""

from pyinfra.context import host
from pyinfra.operations import files, server, systemd

from infra.deploy import template

options: list[str] = host.data.tmp_mount_options
tmp_unit = files.template(
    name="mounts: /tmp options for every boot (tmp.mount)",
    src=template("tmp_mount.conf.j2"),
    dest="/etc/systemd/system/tmp.mount.d/cloop.conf",
    mode="644",
    create_remote_dir=True,
    options=options,
)
systemd.daemon_reload(name="mounts: systemd sees the new options", _if=tmp_unit.did_change)
files.line(
    name="mounts: /dev/shm options for every boot (fstab)",
    path="/etc/fstab",
    line=r"^tmpfs[[:space:]]+/dev/shm[[:space:]].*",
    replace=f"tmpfs /dev/shm tmpfs rw,mode=1777,{','.join(options)} 0 0",
)
for path in ("/tmp", "/dev/shm"):  # noqa: S108 (hardening them, not using them)
    server.mount(name=f"mounts: {path} {','.join(options)} now", path=path, options=options)
