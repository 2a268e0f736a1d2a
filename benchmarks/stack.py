"""The full stack: a fresh `lab up` and a no-change re-deploy, then backup and restore drill of
a 1 GB database.

Backup and drill run on PostgreSQL 17 and pgBackRest from Debian trixie (the deploy's templates)
against the S3 stand-in, as tests/infra/test_stack_backup.py sets them up. Baseline (same run):
a plain `tar` of the data directory, so the backup and restore figures read as multiples of
"reading the cluster once" on any machine. `--no-lab` skips the lab part (e.g. while a lab is
up). Needs root; leaves nothing behind.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from infra.backup_drill import DrillSettings, drill
from infra.standins import s3
from tests.infra.test_stack_backup import (
    DB,
    PG_DATA,
    STANZA,
    DbHost,
    chroot,
    configure,
    db_image,
    free_port,
    mounted,
    s3_client,
)

TARGET_BYTES = 1 << 30
ROW_BYTES = 250  # id + seven md5 strings, with tuple overhead


def lab_figures() -> tuple[float, float]:
    """Seconds for a fresh `lab up` and for a re-deploy that changes nothing."""
    from infra.deploy.run import deploy  # noqa: PLC0415 (only when the lab part runs)
    from infra.lab import lab  # noqa: PLC0415
    from infra.lab.paths import GROUP_DATA, STATE_DIR  # noqa: PLC0415

    lab.down(out=lambda line: None)
    try:
        started = time.monotonic()
        lab.up(lab.Progress())
        lab_up_s = time.monotonic() - started
        redeploy = deploy(lab.INVENTORY, STATE_DIR / "redeploy.log", [GROUP_DATA])
        print(f"re-deploy changed {redeploy.changed} operations")
        return lab_up_s, redeploy.seconds
    finally:
        lab.down(out=lambda line: None)


def timed(what: str, host: DbHost, command: str) -> float:
    started = time.monotonic()
    host.run(command)
    seconds = time.monotonic() - started
    print(f"{what}: {seconds:.1f} s")
    return seconds


def backup_figures() -> tuple[float, float, float, int]:
    """Backup and drill seconds for ~1 GB, the tar baseline, and the database size."""
    with s3.running(secrets.token_hex(10), secrets.token_urlsafe(30)) as standin:
        workdir = Path(tempfile.mkdtemp(prefix="cloop-bench-stack-"))
        root = workdir / "root"
        try:
            subprocess.run(["cp", "-a", "--reflink=auto", str(db_image()), str(root)], check=True)
            bucket = "cloop-bench-backups"
            s3_client(standin).create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": standin.region}
            )
            host = DbHost(root, free_port(), bucket, secrets.token_urlsafe(48), standin)
            configure(root, host.port, standin, bucket, host.passphrase)
            with mounted(root):
                try:
                    return measure(host)
                finally:
                    chroot(root, "pg_ctlcluster 17 main stop -m immediate || true")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(host: DbHost) -> tuple[float, float, float, int]:
    host.run("pg_ctlcluster 17 main start")
    host.run(
        f"runuser -u postgres -- psql -X -q -p {host.port} -f - < /etc/cloop/db-roles.sql"
        f" && runuser -u postgres -- pgbackrest --stanza={STANZA} stanza-create"
    )
    rows = TARGET_BYTES // ROW_BYTES
    started = time.monotonic()
    host.sql(
        "CREATE TABLE bench (id bigint PRIMARY KEY, payload text);"  # noqa: S608
        " INSERT INTO bench SELECT g, md5(g::text) || md5((g * 3)::text) || md5((g * 5)::text)"
        " || md5((g * 7)::text) || md5((g * 11)::text) || md5((g * 13)::text)"
        f" || md5((g * 17)::text) FROM generate_series(1, {rows}) g;"
    )
    size = int(host.sql("SELECT pg_database_size('cloop')"))
    print(f"loaded {size / 2**30:.2f} GiB in {time.monotonic() - started:.0f} s")
    host.sql("CHECKPOINT", database="postgres")
    baseline = timed("baseline tar of the data directory", host, f"tar -cf - {PG_DATA} | wc -c")
    backup = timed(
        "full backup",
        host,
        f"runuser -u postgres -- pgbackrest --stanza={STANZA} --type=full backup",
    )
    started = time.monotonic()
    report = drill(host.run, DrillSettings(stanza=STANZA, database="cloop", port=host.port))
    restore = time.monotonic() - started
    print(f"restore drill: {restore:.1f} s, mismatches: {report.mismatches or 'none'}")
    return backup, restore, baseline, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-lab", action="store_true", help="skip lab up and re-deploy")
    args = parser.parse_args()
    lab_up_s, redeploy_s = (None, None) if args.no_lab else lab_figures()
    backup_s, restore_s, baseline_s, size = backup_figures()
    shown = {
        "lab_up_s": lab_up_s,
        "redeploy_s": redeploy_s,
        "backup_s": backup_s,
        "restore_s": restore_s,
        "baseline_tar_s": baseline_s,
    }
    print(f"database: {size / 2**30:.2f} GiB, pgBackRest {DB['pgbackrest_cipher_type']}, zst")
    print(" ".join(f"{k}={'n/a' if v is None else f'{v:.1f}'}" for k, v in shown.items()))


if __name__ == "__main__":
    main()
