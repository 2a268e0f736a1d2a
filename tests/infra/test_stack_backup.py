"""PostgreSQL 17 + pgvector and pgBackRest from Debian trixie, configured by the deploy's own
templates and data, backing up to the S3 stand-in: encrypted, restorable, checked by the drill.

A trixie tree (the lab's cached root filesystem plus the db packages) runs the real binaries
under chroot on the operator's machine, sharing its loopback with the S3 stand-in; the lab's
testinfra suite (tests/hosts/test_stack_db.py) checks the same on a booted host.
"""

from __future__ import annotations

import fcntl
import hashlib
import runpy
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import jinja2
import psycopg
import pytest

from infra.backup_drill import DrillReport, DrillSettings, TableSum, drill
from infra.deploy.secrets import scram_verifier
from infra.standins.s3 import S3StandIn
from tests.conftest import REPO

DB = {
    name: value
    for name, value in runpy.run_path(str(REPO / "inventories/group_data/db.py")).items()
    if not name.startswith("_")
}
STANZA = DB["pgbackrest_stanza"]
OWNER, APP = DB["postgres_owner_role"], DB["postgres_app_role"]
PASSWORDS = {OWNER: secrets.token_urlsafe(32), APP: secrets.token_urlsafe(32)}
CACHE = REPO / ".cache" / "stack"
PG_ETC = "/etc/postgresql/17/main"
PG_DATA = "/var/lib/postgresql/17/main"
MARKER = "plaintext-marker-" + secrets.token_hex(8)


def render(template: str, **values: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - configuration files, not HTML
    )
    return env.get_template(template).render(**values)


IMAGE_PACKAGES = ["systemd-sysv", "dbus", "python3", "procps", "iproute2", *DB["postgres_packages"]]


def db_image() -> Path:
    """A Debian trixie tree with the db packages (mmdebstrap), built once and cached; a lock
    keeps parallel test runs from building it twice."""
    key = hashlib.sha256(" ".join(["trixie", *IMAGE_PACKAGES, "v1"]).encode()).hexdigest()[:12]
    image = CACHE / f"rootfs-db-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "rootfs-db.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (image / "usr/bin/pgbackrest").exists():
            return image
        building = image.with_name(image.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        hooks = ['rm -f "$1/etc/fstab" && touch "$1/etc/fstab"', 'truncate -s0 "$1/etc/machine-id"']
        log = CACHE / "rootfs-db-build.log"
        with log.open("w") as out:
            built = subprocess.run(
                ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=directory",
                 "--include=" + ",".join(IMAGE_PACKAGES),
                 *[f"--customize-hook={hook}" for hook in hooks],
                 "trixie", str(building), "http://deb.debian.org/debian"],
                stdout=out, stderr=subprocess.STDOUT, check=False, timeout=900,
            )  # fmt: skip
        assert built.returncode == 0, f"mmdebstrap failed; see {log}"
        building.rename(image)
    return image


class mounted:  # noqa: N801 - used as a context manager, reads like one
    """/proc and /dev inside a tree for as long as commands run in it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self) -> None:
        subprocess.run(["mount", "-t", "proc", "proc", str(self.root / "proc")], check=True)
        subprocess.run(["mount", "--rbind", "/dev", str(self.root / "dev")], check=True)

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", "-R", "-l", str(self.root / "dev")], check=False)
        subprocess.run(["umount", "-l", str(self.root / "proc")], check=False)


def chroot(root: Path, command: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["chroot", str(root), "sh", "-c", command],
        input=stdin or "",
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DbHost:
    root: Path
    port: int
    bucket: str
    passphrase: str
    s3: S3StandIn

    def run(self, command: str, stdin: str | None = None) -> str:
        return chroot(self.root, command, stdin)

    def sql(self, query: str, database: str = "cloop") -> str:
        psql = f"runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p {self.port}"
        return self.run(f"{psql} -d {database}", query).strip()

    def pgbackrest(self, args: str, env: str = "") -> subprocess.CompletedProcess[str]:
        command = f"runuser -u postgres -- env {env} pgbackrest {args}"
        return subprocess.run(
            ["chroot", str(self.root), "sh", "-c", command],
            capture_output=True,
            text=True,
            errors="replace",  # a wrong passphrase decrypts to garbage
            check=False,
            timeout=900,
        )


def configure(root: Path, port: int, s3: S3StandIn, bucket: str, passphrase: str) -> None:
    """Write the deploy's templates into the tree, as tasks/postgres.py and pgbackrest.py do."""
    (root / PG_ETC.lstrip("/") / "conf.d/cloop.conf").write_text(
        render(
            "postgres/cloop.conf.j2",
            memory_mb=2048,
            cpus=2,
            listen_addresses=["localhost", "127.0.0.2"],
            port=port,
            max_connections=DB["postgres_max_connections"],
            ssl_cert_file="/etc/ssl/certs/ssl-cert-snakeoil.pem",
            ssl_key_file="/etc/ssl/private/ssl-cert-snakeoil.key",
            shared_buffers_ratio=DB["postgres_shared_buffers_ratio"],
            effective_cache_ratio=DB["postgres_effective_cache_ratio"],
            stanza=STANZA,
            archive_timeout_s=DB["pgbackrest_archive_timeout_s"],
        )
    )
    (root / PG_ETC.lstrip("/") / "pg_hba.conf").write_text(
        render(
            "postgres/pg_hba.conf.j2",
            app_addresses=["127.0.0.2"],
            database=DB["postgres_database"],
            roles=[DB["postgres_owner_role"], DB["postgres_app_role"]],
        )
    )
    (root / "etc/cloop").mkdir(exist_ok=True)
    (root / "etc/cloop/db-roles.sql").write_text(
        render(
            "postgres/roles.sql.j2",
            owner_role=OWNER,
            app_role=APP,
            owner_verifier=scram_verifier(PASSWORDS[OWNER], OWNER),
            app_verifier=scram_verifier(PASSWORDS[APP], APP),
            database=DB["postgres_database"],
        )
    )
    host, s3_port = s3.endpoint.removeprefix("https://").split(":")
    shutil.copy(s3.ca_file, root / "etc/ssl/certs/cloop-s3-standin.pem")
    conf = root / "etc/pgbackrest/pgbackrest.conf"
    conf.parent.mkdir(exist_ok=True)
    conf.write_text(
        render(
            "pgbackrest/pgbackrest.conf.j2",
            s3_host=host,
            s3_port=s3_port,
            s3_region=s3.region,
            bucket=bucket,
            s3_key=s3.access_key,
            s3_key_secret=s3.secret_key,
            s3_ca_file="/etc/ssl/certs/cloop-s3-standin.pem",
            repo_path="cloop-lab",
            cipher_type=DB["pgbackrest_cipher_type"],
            cipher_pass=passphrase,
            retention_full_days=DB["pgbackrest_retention_full_days"],
            process_max=2,
            stanza=STANZA,
            pg_data=PG_DATA,
            pg_port=port,
            pg_socket_dir="/var/run/postgresql",
        )
    )
    conf.chmod(0o640)
    chroot(root, "chown root:postgres /etc/pgbackrest/pgbackrest.conf")


def s3_client(s3: S3StandIn) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name=s3.region,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        verify=str(s3.ca_file),
        config=botocore.config.Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE leads (id bigserial PRIMARY KEY, email text NOT NULL, note text);
CREATE TABLE chunks (id bigserial PRIMARY KEY, body text, embedding vector(3));
INSERT INTO leads (email, note)
  SELECT 'visitor' || g || '@example.eu', 'MARKER' FROM generate_series(1, 500) g;
INSERT INTO chunks (body, embedding)
  SELECT 'chunk ' || g, ARRAY[g, g * 2, g * 3]::vector FROM generate_series(1, 300) g;
""".replace("MARKER", MARKER)


@pytest.fixture(scope="module")
def db_host(tmp_path_factory: pytest.TempPathFactory, s3_standin: S3StandIn) -> Iterator[DbHost]:
    """A trixie tree with a running PostgreSQL 17 cluster archiving to a fresh bucket."""
    root = tmp_path_factory.mktemp("db") / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(db_image()), str(root)], check=True)
    bucket = "cloop-lab-backups-" + secrets.token_hex(4)
    s3_client(s3_standin).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": s3_standin.region}
    )
    host = DbHost(root, free_port(), bucket, secrets.token_urlsafe(48), s3_standin)
    configure(root, host.port, s3_standin, bucket, host.passphrase)
    with mounted(root):
        try:
            host.run("pg_ctlcluster 17 main start")
            host.run(
                f"runuser -u postgres -- psql -X -q -p {host.port} -f -"
                " < /etc/cloop/db-roles.sql && "
                f"runuser -u postgres -- pgbackrest --stanza={STANZA} stanza-create"
            )
            host.sql(SCHEMA)
            yield host
        finally:
            chroot(root, "pg_ctlcluster 17 main stop -m immediate || true")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def backed_up(db_host: DbHost) -> DbHost:
    """A full backup, then writes after it that only the archived WAL carries."""
    result = db_host.pgbackrest(f"--stanza={STANZA} --type=full backup")
    assert result.returncode == 0, result.stderr
    db_host.sql("INSERT INTO leads (email) VALUES ('after-backup@example.eu');")
    return db_host


@pytest.mark.claim("RES-2", "RES-6")
def test_postgres_17_with_pgvector_and_the_deploys_settings(db_host: DbHost) -> None:
    assert db_host.sql("SHOW server_version").startswith("17.")
    assert db_host.sql("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    nearest = db_host.sql("SELECT id FROM chunks ORDER BY embedding <-> '[1,2,3]' LIMIT 1")
    assert nearest == "1"
    assert db_host.sql("SHOW password_encryption") == "scram-sha-256"
    assert db_host.sql("SHOW ssl") == "on"
    assert db_host.sql("SHOW ssl_min_protocol_version") == "TLSv1.2"
    assert db_host.sql("SHOW listen_addresses") == "localhost,127.0.0.2"
    assert db_host.sql("SHOW shared_buffers") == "512MB"  # 25 % of the 2048 MB rendered for


@pytest.mark.claim("RES-2")
def test_pg_hba_allows_tls_from_app_hosts_only(db_host: DbHost) -> None:
    rules = db_host.sql(
        "SELECT type, database[1], address, auth_method FROM pg_hba_file_rules"
        " WHERE type <> 'local' ORDER BY line_number",
        database="postgres",
    ).splitlines()
    remote = [r for r in rules if not r.split("|")[2].startswith(("127.0.0.1", "::1"))]
    assert remote == ["hostssl|cloop|127.0.0.2|scram-sha-256"]
    assert all(r.endswith("|scram-sha-256") for r in rules)


@pytest.mark.claim("RES-2")
def test_app_roles_sign_in_with_scram_and_only_the_owner_bypasses_rls(db_host: DbHost) -> None:
    """The verifiers computed on the operator's machine accept the right password only."""
    rows = db_host.sql("SELECT rolname, rolbypassrls, rolpassword FROM pg_authid").splitlines()
    roles = {r.split("|")[0]: r.split("|")[1:] for r in rows}
    assert roles[OWNER][0] == "t"
    assert roles[APP][0] == "f"
    for role in (OWNER, APP):
        assert roles[role][1].startswith("SCRAM-SHA-256$4096:")
        assert PASSWORDS[role] not in roles[role][1]
    url = f"host=127.0.0.1 port={db_host.port} dbname=cloop user={APP}"
    with psycopg.connect(f"{url} password={PASSWORDS[APP]}") as conn:
        row = conn.execute(
            "SELECT current_user, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == (APP, False)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"{url} password=wrong-{PASSWORDS[APP]}").close()


@pytest.mark.claim("RES-4")
def test_wal_is_archived_at_least_every_minute(db_host: DbHost) -> None:
    assert db_host.sql("SHOW archive_mode") == "on"
    assert db_host.sql("SHOW archive_timeout") == "1min"
    db_host.sql("SELECT pg_switch_wal()")
    check = db_host.pgbackrest(f"--stanza={STANZA} check")
    assert check.returncode == 0, check.stderr
    assert int(db_host.sql("SELECT archived_count FROM pg_stat_archiver")) >= 1


@pytest.mark.claim("OPS-3", "RES-4")
def test_drill_restores_latest_backup_and_every_table_matches(backed_up: DbHost) -> None:
    report = drill(
        backed_up.run, DrillSettings(stanza=STANZA, database="cloop", port=backed_up.port)
    )
    assert set(report.live) == {"public.leads", "public.chunks"}
    assert report.mismatches == []
    assert report.restored["public.leads"].rows == 501  # the write after the backup: from WAL
    assert report.restored["public.chunks"] == report.live["public.chunks"]
    assert not (backed_up.root / "var/lib/postgresql/cloop-drill").exists()


@pytest.mark.claim("OPS-3")
def test_drill_report_names_a_table_that_differs() -> None:
    """The comparison itself can fail: one changed checksum is reported by name."""
    same, other = TableSum(3, "a" * 32), TableSum(3, "b" * 32)
    report = DrillReport(
        "p", {"public.a": same, "public.b": same}, {"public.a": same, "public.b": other}
    )
    assert report.mismatches == ["public.b"]


@pytest.mark.claim("ENC-3", "RES-4")
def test_bucket_bytes_are_unreadable_without_the_passphrase(backed_up: DbHost) -> None:
    s3 = s3_client(backed_up.s3)
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=backed_up.bucket)
        for o in page.get("Contents", [])
    ]
    assert any("/backup/" in k for k in keys), keys
    assert any("/archive/" in k for k in keys), keys
    for key in keys:
        body = s3.get_object(Bucket=backed_up.bucket, Key=key)["Body"].read()
        assert body.startswith(b"Salted__"), f"{key} is not ciphertext"
        assert MARKER.encode() not in body
    wrong = backed_up.pgbackrest(
        f"--stanza={STANZA} info", env=f"PGBACKREST_REPO1_CIPHER_PASS=wrong-{MARKER}"
    )
    assert "unable to load info file" in wrong.stdout, wrong.stdout
    assert "full backup" not in wrong.stdout
    right = backed_up.pgbackrest(f"--stanza={STANZA} info")
    assert right.returncode == 0, right.stderr
    assert "full backup" in right.stdout, right.stdout
