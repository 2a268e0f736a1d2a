"""The base deploy of every Debian 13 host, in order. Run by `cloop-ops deploy` / `lab up`:

    pyinfra inventories/<env>.py infra/deploy/deploy.py

Later issues add their roles' tasks (db, edge, app) after these.
"""

from pathlib import Path

from pyinfra import local

TASKS = Path(__file__).parent / "tasks"

for task in (
    "apt",  # the environment's mirror
    "packages",  # hardening tools in, legacy services out
    "accounts",  # deploy user, password rules, core dumps, file modes
    "sshd",  # keys only, modern crypto, fail2ban
    "sysctl",  # kernel and network parameters
    "modules",  # blacklisted kernel modules
    "mounts",  # /tmp and /dev/shm nodev,nosuid,noexec
    "journald",  # persistent journal, 12 months (LOG-3)
    "auditd",  # audit rules
    "time",  # chrony
    "upgrades",  # unattended security upgrades
    "nftables",  # ingress default-deny, egress allow-list (OPS-1, SUB-1, RES-5)
    "monitoring",  # health checks every minute, an alert on each change (OPS-2)
):
    local.include(str(TASKS / f"{task}.py"))
