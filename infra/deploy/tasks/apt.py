"""Package sources: the environment's mirror only (Hetzner's in production, the lab's)."""

from pyinfra.context import host
from pyinfra.operations import apt, files
from pyinfra.operations.util import any_changed

from infra.deploy import host_data, template
from infra.deploy.hostdata import apt_mirror, apt_security_mirror

sources = files.template(
    name="apt: sources from the environment's mirror",
    src=template("apt_debian.sources.j2"),
    dest="/etc/apt/sources.list.d/debian.sources",
    mirror=apt_mirror(host.name, host_data()),
    security_mirror=apt_security_mirror(host.name, host_data()),
    suite=host.data.apt_suite,
    lab=bool(host.data.get("apt_mirror_override")),
    mode="644",
)
legacy = files.template(
    name="apt: no sources in the legacy sources.list",
    src=template("apt_sources_list.j2"),
    dest="/etc/apt/sources.list",
    mode="644",
)
files.template(
    name="apt: no recommends, no unauthenticated packages",
    src=template("apt_hardening.conf.j2"),
    dest="/etc/apt/apt.conf.d/90cloop-hardening",
    mode="644",
)
apt.update(name="apt: refresh the package lists", _if=any_changed(sources, legacy))
