"""Packages: the hardening tools in, legacy and clear-text services out (CIS 2.x)."""

from pyinfra.context import host
from pyinfra.operations import apt, files

apt.packages(
    name="packages: hardening and operations tools",
    packages=host.data.packages_present,
    no_recommends=True,
)
for path, (key, value) in host.data.package_tool_defaults.items():
    files.line(
        name=f"packages: {path} {key}={value}",
        path=path,
        line=f"^{key}=.*",
        replace=f"{key}={value}",
    )
apt.packages(
    name="packages: no legacy or unneeded services",
    packages=host.data.packages_absent,
    present=False,
)
