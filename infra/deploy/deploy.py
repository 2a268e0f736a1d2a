"""The base deploy of every Debian 13 host, in order. Run by `cloop-ops deploy` / `lab up`:

    pyinfra inventories/<env>.py infra/deploy/deploy.py

Then each role's tasks: db before app (the release migrates the database first).
"""

from pathlib import Path

from pyinfra import local
from pyinfra.context import host

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

# One include per line: pyinfra orders operations by their lines, and hosts of different roles
# must not share a line for different tasks (a loop here makes its ordering cyclic).
if "db" in host.groups:  # PostgreSQL + pgvector, encrypted backups (RES-2, RES-3, RES-4)
    local.include(str(TASKS / "postgres.py"))
    local.include(str(TASKS / "pgbackrest.py"))
if "edge" in host.groups:  # TLS edge and its ACME certificates (ENC-1, ENC-4, RATE-1)
    local.include(str(TASKS / "nginx.py"))
    local.include(str(TASKS / "certbot.py"))
if "app" in host.groups:  # the release (after the db: it migrates), its daily jobs
    local.include(str(TASKS / "app_release.py"))
    local.include(str(TASKS / "app_jobs.py"))
