"""Database hosts: PostgreSQL 17 + pgvector from Debian trixie, and pgBackRest to Helsinki.

Self-managed on our own server (RES-2), vectors stored and searched locally (RES-6), backups
encrypted on the host before they leave for Hetzner Object Storage `hel1` (RES-3, RES-4, ENC-3).
"""

postgres_version = 17
postgres_packages = ["postgresql-17", "postgresql-17-pgvector", "pgbackrest", "ssl-cert"]
postgres_cluster = "main"
postgres_port = 5432
postgres_database = "cloop"
# Roles of the app issue (app/core/bootstrap.py): the owner runs migrations and purges, the app
# role serves requests without BYPASSRLS. Their passwords are generated at deploy time.
postgres_owner_role = "cloop_owner"
postgres_app_role = "cloop_app"
postgres_max_connections = 100
# Memory split derived from the host's RAM (templates/postgres/cloop.conf.j2): the usual
# 25 % for shared buffers, 75 % assumed available as page cache.
postgres_shared_buffers_ratio = 0.25
postgres_effective_cache_ratio = 0.75

# pgBackRest: the bucket is created by provisioning (group_data/all.py `object_storage`).
pgbackrest_stanza = "cloop"
pgbackrest_bucket = "backups"
pgbackrest_cipher_type = "aes-256-cbc"
# Continuous WAL archiving: a segment is shipped at least once a minute (RPO <= 60 s).
pgbackrest_archive_timeout_s = 60
# Weekly full, daily differential, time-based retention of 21 days. pgBackRest keeps the newest
# full older than 21 days too, so the oldest backup is at most 21 + 7 = 28 days old: data erased
# on day D is gone from every backup (and its WAL) by day D + 29, inside the 30-day promise.
# The bucket's 30-day lifecycle rule (all.py) is the backstop.
pgbackrest_retention_full_days = 21
pgbackrest_full_weekday = 7  # ISO weekday of the full backup (Sunday)
pgbackrest_backup_time = "02:30"
