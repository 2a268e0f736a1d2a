"""Packages: the hardening tools in, legacy and clear-text services out (CIS 2.x)."""

from pyinfra.context import host
from pyinfra.operations import apt

apt.packages(
    name="packages: hardening and operations tools",
    packages=host.data.packages_present,
    no_recommends=True,
)
apt.packages(
    name="packages: no legacy or unneeded services",
    packages=host.data.packages_absent,
    present=False,
)
