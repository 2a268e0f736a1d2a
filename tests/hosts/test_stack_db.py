"""Database hosts: PostgreSQL 17 + pgvector local and private, encrypted daily backups to hel1
(RES-2, RES-3, RES-4, RES-6, ENC-3, OPS-3). Parametrized over the inventory's db hosts."""

from __future__ import annotations

import configparser
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.hosts.conftest import connect, data_of, hosts, inventory


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_name" in metafunc.fixturenames:
        names = [h.name for h in hosts() if "db" in h.roles]
        metafunc.parametrize("db_name", names, ids=names)


def sql(host: Any, query: str, database: str = "postgres") -> str:
    return str(
        host.check_output(f"runuser -u postgres -- psql -X -A -t -d {database} -c {query!r}")
    )


def pgbackrest_conf(host: Any) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read_string(host.file("/etc/pgbackrest/pgbackrest.conf").content_string)
    return parser


@pytest.mark.claim("RES-2")
def test_postgres_17_runs_on_the_host(db_name: str) -> None:
    host = connect(db_name)
    assert host.service("postgresql@17-main").is_running
    assert sql(host, "SHOW server_version").startswith("17.")


@pytest.mark.claim("RES-2")
def test_postgres_listens_on_localhost_and_private_network_only(db_name: str) -> None:
    host, data = connect(db_name), data_of(db_name)
    out = host.check_output("ss -Hltn 'sport = :5432'")
    listening = {line.split()[3].rsplit(":", 1)[0].strip("[]") for line in out.splitlines()}
    assert listening <= {"127.0.0.1", "::1", data["private_ipv4"]}, listening
    assert data["private_ipv4"] in listening


@pytest.mark.claim("RES-2")
def test_remote_access_is_tls_and_scram_from_app_hosts_only(db_name: str) -> None:
    host = connect(db_name)
    apps = {h.private_ipv4 for h in hosts() if "app" in h.roles}
    rules = sql(host, "SELECT type, address, auth_method FROM pg_hba_file_rules "
                      "WHERE type <> 'local'").splitlines()  # fmt: skip
    remote = [r.split("|") for r in rules if not r.split("|")[1].startswith(("127.", "::1"))]
    assert remote
    assert all(kind == "hostssl" and addr in apps and auth == "scram-sha-256"
               for kind, addr, auth in remote), remote  # fmt: skip
    assert sql(host, "SHOW password_encryption") == "scram-sha-256"
    assert sql(host, "SHOW ssl") == "on"


@pytest.mark.claim("RES-6")
def test_pgvector_in_the_app_database(db_name: str) -> None:
    host = connect(db_name)
    assert (
        sql(host, "SELECT extname FROM pg_extension WHERE extname = 'vector'", "cloop") == "vector"
    )


@pytest.mark.claim("RES-3", "RES-4", "ENC-3")
def test_backup_repository_is_hel1_and_encrypted(db_name: str) -> None:
    host = connect(db_name)
    conf = pgbackrest_conf(host)["global"]
    storage = inventory().data.object_storage
    assert conf["repo1-type"] == "s3"
    assert conf["repo1-s3-endpoint"] == urlsplit(storage.endpoint).hostname
    assert conf["repo1-s3-region"] == storage.region == "hel1"
    assert conf["repo1-cipher-type"] == "aes-256-cbc"
    assert len(conf["repo1-cipher-pass"]) >= 32
    config = host.file("/etc/pgbackrest/pgbackrest.conf")
    assert (config.user, config.group, config.mode) == ("root", "postgres", 0o640)


@pytest.mark.claim("RES-4")
def test_wal_archived_at_least_every_minute(db_name: str) -> None:
    host = connect(db_name)
    assert sql(host, "SHOW archive_mode") == "on"
    assert (
        sql(host, "SELECT setting::int <= 60 FROM pg_settings WHERE name = 'archive_timeout'")
        == "t"
    )
    assert sql(host, "SELECT failed_count = 0 OR last_archived_time > last_failed_time "
                     "FROM pg_stat_archiver") == "t"  # fmt: skip


@pytest.mark.claim("RES-4", "OPS-3")
def test_daily_backup_timer_active_and_a_backup_present(db_name: str) -> None:
    host, data = connect(db_name), data_of(db_name)
    timer = host.service("cloop-backup.timer")
    assert timer.is_enabled
    assert timer.is_running
    info = host.check_output(
        f"runuser -u postgres -- pgbackrest --stanza={data['pgbackrest_stanza']} info --output=json"
    )
    assert json.loads(info)[0]["backup"], "no backup in the repository"
