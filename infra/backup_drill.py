"""`cloop-ops backup-drill INVENTORY`: prove that the latest backup restores, table by table.

On the database host: checksum every table of the live database under a SHARE lock (writers
wait, readers do not) and mark that instant with a named restore point; restore the latest
pgBackRest backup plus archived WAL up to that point into a scratch cluster; checksum the same
tables there and compare row counts and checksums (OPS-3). The scratch cluster never archives
and is removed afterwards, whatever happens.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

# Runs one shell command as root on the database host (stdin optional); returns its stdout.
Runner = Callable[[str, str | None], str]

PG_BIN = "/usr/lib/postgresql/{version}/bin"
SCRATCH_PORT = 54329
PROMOTE_TIMEOUT_S = 3600.0


class DrillError(Exception):
    """The drill could not run or the restored data differs; the message says which."""


@dataclass(frozen=True)
class DrillSettings:
    """Where the live cluster is and what to check; defaults match group_data/db.py."""

    stanza: str = "cloop"
    database: str = "cloop"
    port: int = 5432
    version: int = 17
    scratch: str = "/var/lib/postgresql/cloop-drill"


@dataclass(frozen=True)
class TableSum:
    rows: int
    md5: str


@dataclass(frozen=True)
class DrillReport:
    restore_point: str
    live: dict[str, TableSum]
    restored: dict[str, TableSum]

    @property
    def mismatches(self) -> list[str]:
        names = sorted(set(self.live) | set(self.restored))
        return [n for n in names if self.live.get(n) != self.restored.get(n)]


TABLES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1;
"""


def checksum_sql(table: str) -> str:
    """Row count and an order-independent digest of every row's text form.

    `table` comes from TABLES_SQL, already quoted by format('%I.%I').
    """
    return (
        f"SELECT json_build_object('table', {quote_literal(table)}, 'rows', count(*),"  # noqa: S608
        f" 'md5', coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), ''))"
        f" FROM {table} t;"
    )


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def psql(settings: DrillSettings, port: int) -> str:
    return (
        f"runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1"
        f" -p {port} -d {shlex.quote(settings.database)}"
    )


def parse_sums(output: str) -> dict[str, TableSum]:
    sums = {}
    for line in output.splitlines():
        if line.startswith("{") and '"table"' in line:
            row = json.loads(line)
            sums[row["table"]] = TableSum(int(row["rows"]), str(row["md5"]))
    return sums


def live_sums(run: Runner, settings: DrillSettings, point: str) -> dict[str, TableSum]:
    """Checksums of the live tables, consistent with the restore point created under the lock."""
    tables = run(psql(settings, settings.port), TABLES_SQL).split()
    if not tables:
        raise DrillError(f"database {settings.database} has no tables to compare")
    script = "\n".join(
        [
            "BEGIN;",
            f"LOCK TABLE {', '.join(tables)} IN SHARE MODE;",
            *(checksum_sql(t) for t in tables),
            f"SELECT pg_create_restore_point({quote_literal(point)});",
            "COMMIT;",
        ]
    )
    sums = parse_sums(run(psql(settings, settings.port), script))
    # Ship the WAL that holds the restore point; `check` waits until it is archived.
    run(f"runuser -u postgres -- pgbackrest --stanza={settings.stanza} check", None)
    return sums


def scratch_config(settings: DrillSettings) -> str:
    """The restored cluster: local socket only, never archiving into the live repository."""
    return "\n".join(
        [
            f"port = {SCRATCH_PORT}",
            "listen_addresses = ''",
            "unix_socket_directories = '/var/run/postgresql'",
            "archive_mode = off",
            "ssl = off",
            "shared_buffers = 128MB",
            f"hba_file = '{settings.scratch}/pg_hba.conf'",
            f"ident_file = '{settings.scratch}/pg_ident.conf'",
            "",
        ]
    )


def restore(run: Runner, settings: DrillSettings, point: str) -> None:
    """The latest backup plus WAL up to `point`, promoted, in `settings.scratch`."""
    scratch = shlex.quote(settings.scratch)
    run(f"rm -rf {scratch} && install -d -o postgres -g postgres -m 700 {scratch}", None)
    run(
        f"runuser -u postgres -- pgbackrest --stanza={settings.stanza} --pg1-path={scratch}"
        f" --type=name --target={shlex.quote(point)} --target-action=promote"
        f" --archive-mode=off --log-level-console=warn restore",
        None,
    )
    for name, text in (
        ("postgresql.conf", scratch_config(settings)),
        ("pg_hba.conf", "local all postgres peer\n"),
        ("pg_ident.conf", ""),
    ):
        run(f"runuser -u postgres -- tee {scratch}/{name} >/dev/null", text)
    bin_dir = PG_BIN.format(version=settings.version)
    run(
        f"runuser -u postgres -- {bin_dir}/pg_ctl -D {scratch} -l {scratch}/drill.log"
        f" -w -t 3600 start >/dev/null",
        None,
    )
    deadline = time.monotonic() + PROMOTE_TIMEOUT_S
    while run(psql(settings, SCRATCH_PORT), "SELECT pg_is_in_recovery();").strip() != "f":
        if time.monotonic() > deadline:
            raise DrillError("the scratch cluster did not finish recovery")
        time.sleep(0.5)


def discard(run: Runner, settings: DrillSettings) -> None:
    scratch = shlex.quote(settings.scratch)
    bin_dir = PG_BIN.format(version=settings.version)
    run(
        f"if [ -f {scratch}/postmaster.pid ]; then runuser -u postgres -- {bin_dir}/pg_ctl"
        f" -D {scratch} -m immediate -w stop >/dev/null; fi; rm -rf {scratch}",
        None,
    )


def drill(run: Runner, settings: DrillSettings | None = None) -> DrillReport:
    """Restore the latest backup into a scratch cluster and compare it with the live one."""
    settings = settings or DrillSettings()
    point = f"cloop-drill-{int(time.time())}"
    live = live_sums(run, settings, point)
    try:
        restore(run, settings, point)
        restored = parse_sums(
            run(psql(settings, SCRATCH_PORT), "\n".join(checksum_sql(t) for t in live))
        )
    finally:
        discard(run, settings)
    return DrillReport(point, live, restored)


def ssh_runner(
    hostname: str, port: int, user: str, key: Path | None, known_hosts: Path | None
) -> Runner:
    """Commands over SSH as `user` (through sudo unless root), failing with the remote stderr."""
    options = ["-p", str(port), "-o", "BatchMode=yes"]
    if key:
        options += ["-i", str(key)]
    if known_hosts:
        options += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    sudo = "" if user == "root" else "sudo -n "

    def run(command: str, stdin: str | None) -> str:
        remote = f"{sudo}sh -c {shlex.quote(command)}"
        result = subprocess.run(
            ["ssh", *options, f"{user}@{hostname}", remote],
            input=stdin or "",
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DrillError(f"on {hostname}: {command.split(maxsplit=1)[0]}... failed: {detail}")
        return result.stdout

    return run


def format_report(report: DrillReport) -> list[str]:
    lines = [f"restore point {report.restore_point}: {len(report.live)} tables compared"]
    for name in sorted(report.live):
        live, restored = report.live[name], report.restored.get(name)
        verdict = "ok" if live == restored else f"DIFFERS (restored: {restored})"
        lines.append(f"  {name}: {live.rows} rows, md5 {live.md5[:12]}  {verdict}")
    return lines


def command(
    inventory: Annotated[str, typer.Argument(help="inventory name: production, staging or lab")],
    ssh_user: Annotated[str | None, typer.Option(help="SSH user on the db host")] = None,
    ssh_key: Annotated[Path | None, typer.Option(help="SSH private key")] = None,
    known_hosts: Annotated[Path | None, typer.Option(help="known_hosts file")] = None,
) -> None:
    """Restore the latest backup into a scratch cluster on the db host; compare every table."""
    from infra.inventory import InventoryError, load  # noqa: PLC0415 (keeps the CLI fast)
    from infra.lab.paths import GROUP_DATA  # noqa: PLC0415
    from infra.verify import extra_group_data, host_data  # noqa: PLC0415

    try:
        inv = load(inventory)
        hosts = [h for h in inv.hosts if "db" in h.roles]
        if not hosts or not hosts[0].ssh_hostname:
            raise DrillError(f"inventory {inventory}: no provisioned db host")
        db = hosts[0]
        # The lab keeps its SSH key and known hosts in its own group data.
        extra = [*extra_group_data(), *([GROUP_DATA] if inventory == "lab" else [])]
        data = host_data(inv, db, extra)
        settings = DrillSettings(
            stanza=data["pgbackrest_stanza"],
            database=data["postgres_database"],
            port=data["postgres_port"],
            version=data["postgres_version"],
        )
        run = ssh_runner(
            db.ssh_hostname or "",
            db.ssh_port or 22,
            ssh_user or data.get("ssh_user", "root"),
            ssh_key or (Path(data["ssh_key"]) if data.get("ssh_key") else None),
            known_hosts or (Path(p) if (p := data.get("ssh_known_hosts_file")) else None),
        )
        report = drill(run, settings)
    except (DrillError, InventoryError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in format_report(report):
        typer.echo(line)
    if report.mismatches:
        typer.echo(f"error: restored data differs in {', '.join(report.mismatches)}", err=True)
        raise typer.Exit(1)
