"""Kernel modules: rare filesystems, unused protocols and external buses never load (CIS)."""

from pyinfra.context import host
from pyinfra.operations import files

from infra.deploy import template

files.template(
    name="modules: blacklist and disable",
    src=template("modprobe_blacklist.conf.j2"),
    dest="/etc/modprobe.d/cloop-blacklist.conf",
    mode="644",
    modules=host.data.blacklisted_modules,
)
