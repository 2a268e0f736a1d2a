"""Data for every host of every inventory: where Cloop runs and who processes its data.

This file is the single source of truth that provisioning (hcloud, S3 buckets), the hosts'
egress firewall and the compliance documents (subprocessor list, residency table, AI data
boundary) are all derived from. Plain data: a reviewer can read it without running anything.
It is validated on load by `infra/inventory.py`.
"""

# -- Residency: the only place anything is created ------------------------------------------
location = "hel1"  # Hetzner Helsinki, Finland
network_zone = "eu-central"
country = "FI"
image = "debian-13"

# -- Per environment: name prefix, sizes and package mirror -------------------------------------
# Server type of a host = the type of its largest role (db > app > edge). Where an environment
# holds customer data, its package mirror must be run by a subprocessor (no new party).
environments = {
    "production": {
        "prefix": "cloop-prod",
        "server_types": {"edge": "cx23", "app": "cx33", "db": "cx43"},
        "db_volume_gb": 100,
        "apt_mirror": "https://mirror.hetzner.com/debian/packages",
        "customer_data": True,
    },
    "staging": {
        "prefix": "cloop-stg",
        "server_types": {"edge": "cx23", "app": "cx23", "db": "cx33"},
        "db_volume_gb": 20,
        "apt_mirror": "https://mirror.hetzner.com/debian/packages",
        "customer_data": False,
    },
    "lab": {
        "prefix": "cloop-lab",
        "server_types": {"edge": "cx23", "app": "cx23", "db": "cx23"},
        "db_volume_gb": 10,
        "apt_mirror": "http://deb.debian.org/debian",
        "customer_data": False,
    },
}

# -- Private network between the hosts (database traffic never uses the public interface) -----
private_network = {"ip_range": "10.42.0.0/16", "subnet": "10.42.1.0/24"}

# -- Public ingress, per group: mirrored by the Hetzner Cloud Firewall and the hosts' nftables -
ingress = {
    "debian13": [
        {"protocol": "tcp", "port": "22", "description": "SSH, keys only"},
        {"protocol": "icmp", "port": None, "description": "ping, path MTU"},
    ],
    "edge": [
        {"protocol": "tcp", "port": "80", "description": "HTTP: redirect and ACME challenges"},
        {"protocol": "tcp", "port": "443", "description": "HTTPS"},
    ],
}

# Operator SSH public keys put on every server at creation (files on the operator's machine).
ssh_keys = {"operator": "~/.ssh/id_ed25519.pub"}

# -- Object storage: Hetzner's S3-compatible storage in Helsinki --------------------------------
# Lifecycle: current backup objects expire after 30 days (pgBackRest keeps < 30 days of full
# backups, taken weekly); deleted upload versions are purged after 30 days. Together these keep
# the promise that erased data is gone within 30 days.
object_storage = {
    "endpoint": "https://hel1.your-objectstorage.com",
    "region": "hel1",
    "buckets": {
        "backups": {"purpose": "encrypted PostgreSQL backups (pgBackRest)", "expire_days": 30},
        "uploads": {"purpose": "knowledge-base files uploaded by customers", "expire_days": None},
    },
    "noncurrent_expire_days": 30,
}

# -- Subprocessors: exactly the parties that receive data, and where hosts reach them ---------
# `roles` says which hosts open a connection to each endpoint; the egress allow-list of a host
# is exactly the endpoints of its roles.
subprocessors = [
    {
        "name": "Hetzner Online GmbH",
        "country": "DE",
        "processing": "Helsinki, Finland (hel1)",
        "purpose": "Infrastructure: servers, database hosting, object storage, backups",
        "personal_data": "All customer data, on servers and storage we control",
        "endpoints": [
            {
                "host": "hel1.your-objectstorage.com",
                "port": 443,
                "protocol": "tcp",
                "roles": ["app", "db"],
                "purpose": "object storage (uploads, backups)",
            },
            {
                "host": "mirror.hetzner.com",
                "port": 443,
                "protocol": "tcp",
                "roles": ["debian13"],
                "purpose": "Debian packages and security updates",
            },
            {
                "host": "ntp1.hetzner.de",
                "port": 123,
                "protocol": "udp",
                "roles": ["debian13"],
                "purpose": "time synchronisation",
            },
            {
                "host": "ntp2.hetzner.com",
                "port": 123,
                "protocol": "udp",
                "roles": ["debian13"],
                "purpose": "time synchronisation",
            },
        ],
    },
    {
        "name": "Nebius B.V.",
        "country": "NL",
        "processing": "EU data centres",
        "purpose": "AI inference: embeddings and chat responses; transient, no training",
        "personal_data": "The parts of a conversation listed under the AI data boundary",
        "endpoints": [
            {
                "host": "api.tokenfactory.nebius.com",
                "port": 443,
                "protocol": "tcp",
                "roles": ["app"],
                "purpose": "OpenAI-compatible inference API (EU)",
            },
        ],
    },
    {
        "name": "Let's Encrypt (ISRG)",
        "country": "US",
        "processing": "Global certificate authority",
        "purpose": "TLS certificate issuance",
        "personal_data": "None: domain names only",
        "endpoints": [
            {
                "host": "acme-v02.api.letsencrypt.org",
                "port": 443,
                "protocol": "tcp",
                "roles": ["edge"],
                "purpose": "ACME certificate issuance and renewal",
            },
        ],
    },
]

# -- What crosses to the AI provider, and what never does (the app's prompt builder) ----------
ai_boundary = {
    "provider": "Nebius B.V.",
    "sent": [
        "The visitor's message text (current turn)",
        "Relevant knowledge-base chunks of the same tenant",
        "System instructions (language, persona, phase)",
        "Recent conversation context of the current session",
    ],
    "kept": [
        "Visitor e-mail addresses, phone numbers and identifiers (redacted before sending)",
        "Account credentials and internal metadata",
        "Data of other tenants",
        "Vector embeddings and similarity search (pgvector, on our database host)",
        "Session state, lead records, analytics",
    ],
}

# -- Monitoring (OPS-2; the monitoring task, infra/deploy/tasks/monitoring.py) ----------------
# Every host checks itself each minute (templates/monitoring/cloop-healthcheck.py.j2); a change
# of state is one alert, a JSON POST to the operator's own paging endpoint (run by us, not a
# third party: alerts name hosts and checks, never customer data) with a bearer token from the
# secret store. Watched units and disk paths apply to hosts in the named group.
monitoring = {
    "webhook_url": "https://ops.cloop.eu/alerts",
    "interval_s": 60,
    "units": {
        "debian13": ["ssh.service", "nftables.service", "chrony.service", "fail2ban.service"],
        "edge": ["nginx.service", "certbot.timer"],
        "app": ["cloop-app.service"],
        "db": ["postgresql@17-main.service", "cloop-backup.timer"],
    },
    "disk_paths": {"debian13": ["/"], "db": ["/var/lib/postgresql"]},
    "disk_warning_percent": 80,
    "disk_critical_percent": 90,
    # certbot renews 30 days before expiry: 21 days left means renewal has failed for 9 days
    "certificate_warning_days": 21,
    "certificate_critical_days": 7,
    # the daily backup starts at 02:30 (+ up to 10 min): 26 h without one means one was missed
    "backup_max_age_hours": 26,
    "http_path": "/healthz",  # the app's health check, polled by the edge on every app host
}
