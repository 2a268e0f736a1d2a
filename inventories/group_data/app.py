"""App hosts: how a release is installed and run (the wheelhouse, the sandboxed unit).

Hosts never reach PyPI: the operator's machine builds a wheelhouse for the hosts' Python
(`infra/release/wheelhouse.py`), the deploy uploads it and installs with `pip --no-index`.
"""

app_user = "cloop"
app_root = "/opt/cloop"  # releases/<id>/ per version, `current` links the live one
app_config_dir = "/etc/cloop"
app_port = 8000
app_releases_kept = 3
# The deploy's gate before traffic: the new release must answer here, else it is rolled back.
app_health_path = "/healthz"
app_health_timeout_s = 30
# The hosts' interpreter and platform (Debian 13, x86_64 Hetzner cloud servers).
host_python_version = "3.13"
host_arch = "x86_64"
host_glibc = (2, 41)
# Further settings of the app's packages (CLOOP_AI_*, CLOOP_S3_*, ...), name -> value.
app_environment: dict[str, str] = {}

# Daily jobs of the app (templates/app/cloop-job.*.j2), on the first app host only: unit name ->
# the module and arguments run by the release's Python, and the time of day (UTC).
app_jobs = {
    # erased tenants and accounts purged, conversation retention enforced (GDPR-17: 30 days)
    "cloop-privacy-purge": {"command": "-m app.privacy.purge", "time": "03:15"},
    # audit rows older than their retention deleted (LOG-3)
    "cloop-audit-purge": {"command": "-m app.jobs purge-audit", "time": "03:45"},
}
# The bucket of customers' uploads (group_data/all.py `object_storage.buckets`), read by the purge.
app_uploads_bucket = "uploads"
