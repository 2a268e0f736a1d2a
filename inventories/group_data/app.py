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
