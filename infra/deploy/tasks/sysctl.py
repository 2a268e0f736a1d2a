"""Kernel parameters: persisted for every boot, applied now where this host lets us."""

from pyinfra.context import host
from pyinfra.operations import files, server

from infra.deploy import template
from infra.deploy.facts import WritableSysctls

settings: dict[str, int] = host.data.sysctl_settings
files.template(
    name="sysctl: hardening settings for every boot",
    src=template("sysctl_hardening.conf.j2"),
    dest="/etc/sysctl.d/90-cloop-hardening.conf",
    mode="644",
    settings=settings,
)
# In a container only per-network-namespace keys are writable; the rest waits for a real boot.
for key in host.get_fact(WritableSysctls, keys=sorted(settings)):
    server.sysctl(name=f"sysctl: {key} now", key=key, value=settings[key])
