"""An authenticated, tenant-scoped read (GET /api/v1/sites) at 32 concurrent clients, next to a
bare FastAPI endpoint measured in the same run on the same uvicorn settings.

Both servers are real uvicorn processes on loopback (one worker each, same configuration); the
load generator is a minimal HTTP/1.1 keep-alive client on raw asyncio streams, so the client
costs far less than the servers and the ratio reflects the platform's per-request work (JWT
check, pooled connection, tenant transaction, membership and erasure re-check, query,
serialisation, commit).

Fairness on a shared machine: both sides are warmed up, then measured in short interleaved
rounds (bare/app, app/bare, ...) so that a change of machine load hits both alike; figures are
medians over rounds with their spread. CPU time per request (server process, plus PostgreSQL
for the app) does not depend on what else the machine runs, so it is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from app.core import embedded
from app.core.db import Database
from app.core.main import create_app
from app.core.migrations import apply_migrations
from app.core.plans import Plan
from app.core.roles import Role
from app.core.security import TokenIssuer, write_new_key
from app.core.settings import Settings
from app.core.tenancy import TenantId
from app.sites import repository as sites
from app.standins import bind_loopback
from app.tenants import service as tenants
from app.users.service import ensure_user

CLIENTS = 32
WARMUP_S = 3.0
ROUNDS = 8
ROUND_S = 2.5
SITES = 5
_TICK = os.sysconf("SC_CLK_TCK")


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> list[dict[str, str]]:
        return [{"id": "1", "name": "Site"}]

    return app


def serve(kind: str) -> None:
    """Child process: bind a free loopback port, print it, serve until terminated."""
    sock = bind_loopback()  # names IPPROTO_TCP: TCP_NODELAY as in production (see its docstring)
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    app = create_app(Settings(migrate_on_start=False)) if kind == "app" else bare_app()
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, log_config=None)
    uvicorn.Server(config).run(sockets=[sock])


async def _worker(port: int, request: bytes, stop: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    while (started := time.perf_counter()) < stop:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        errors += not head.startswith(b"HTTP/1.1 200")
    writer.close()
    return errors


async def _load(
    port: int, path: str, headers: dict[str, str], seconds: float
) -> tuple[list[float], int]:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    errors = await asyncio.gather(
        *(_worker(port, request, stop, latencies) for _ in range(CLIENTS))
    )
    return latencies, sum(errors)


def measure(port: int, path: str, headers: dict[str, str], seconds: float) -> list[float]:
    """Latencies of ``seconds`` of load; any non-200 answer aborts the run."""
    latencies, errors = asyncio.run(_load(port, path, headers, seconds))
    if errors:
        raise SystemExit(f"{path}: {errors} answers were not 200")
    return latencies


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):  # a backend that has exited
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (PostgreSQL's backends and workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(FileNotFoundError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
    return found


@dataclass(frozen=True)
class Target:
    """What to load and which processes do its work."""

    port: int
    path: str
    headers: dict[str, str]
    server: int
    postmaster: int | None = None  # PostgreSQL, whose backends work for the app

    def db_pids(self) -> list[int]:
        return [] if self.postmaster is None else [self.postmaster, *children(self.postmaster)]


@dataclass(frozen=True)
class Round:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # CPU time per request: the server's
    db_cpu_ms: float  # and PostgreSQL's


def run_round(target: Target, seconds: float) -> Round:
    db_pids = target.db_pids()
    cpu, db_cpu = cpu_seconds([target.server]), cpu_seconds(db_pids)
    started = time.perf_counter()
    latencies = measure(target.port, target.path, target.headers, seconds)
    elapsed = time.perf_counter() - started
    cpu, db_cpu = cpu_seconds([target.server]) - cpu, cpu_seconds(db_pids) - db_cpu
    cuts = statistics.quantiles(latencies, n=100)
    n = len(latencies)
    return Round(n / elapsed, cuts[49] * 1000, cuts[98] * 1000, cpu / n * 1e3, db_cpu / n * 1e3)


def median(rounds: list[Round], field: str) -> float:
    return statistics.median(float(getattr(r, field)) for r in rounds)


def report(what: str, rounds: list[Round]) -> None:
    rps = [r.rps for r in rounds]
    print(
        f"{what}: {median(rounds, 'rps'):.0f} req/s (rounds {min(rps):.0f}-{max(rps):.0f}),"
        f" p50 {median(rounds, 'p50_ms'):.1f} ms, p99 {median(rounds, 'p99_ms'):.1f} ms,"
        f" CPU/request: server {median(rounds, 'cpu_ms'):.2f} ms"
        + (f", PostgreSQL {median(rounds, 'db_cpu_ms'):.2f} ms" if rounds[0].db_cpu_ms else "")
    )


def compare(bare: Target, app: Target) -> tuple[list[Round], list[Round]]:
    """Warm both up, then ROUNDS interleaved rounds, alternating which side goes first."""
    for target in (bare, app):
        measure(target.port, target.path, target.headers, WARMUP_S)
    bare_rounds: list[Round] = []
    app_rounds: list[Round] = []
    for n in range(ROUNDS):
        order = [(bare, bare_rounds), (app, app_rounds)]
        for target, rounds in order if n % 2 == 0 else order[::-1]:
            rounds.append(run_round(target, ROUND_S))
    return bare_rounds, app_rounds


async def seed(settings: Settings) -> tuple[TenantId, uuid.UUID]:
    """One Pro tenant with an Owner and a few sites: (tenant id, owner's user id)."""
    db = Database.from_settings(settings)
    await db.open()
    try:
        return await _seed(db)
    finally:
        await db.close()


async def _seed(db: Database) -> tuple[TenantId, uuid.UUID]:
    async with db.unscoped() as conn:
        user = await ensure_user(conn, "bench@example.test", "Bench")
    tenant_id = await tenants.create_tenant(db, "Bench", user)
    await tenants.set_plan(db, tenant_id, Plan.PRO)
    values = {
        "allowed_origins": ["https://example.com"],
        "persona": "Helpful",
        "language": "en",
        "phase": "",
    }
    async with db.tenant(tenant_id) as conn:
        for n in range(SITES):
            await sites.insert_site(conn, tenant_id, {**values, "name": f"Site {n}"})
    return tenant_id, user


def _start(kind: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.api", "--serve", kind],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    return child, int(child.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["app", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    workdir = Path(tempfile.mkdtemp(prefix="cloop-bench-"))
    postgres = embedded.start(workdir / "pg", delete_on_exit=True)
    servers: list[subprocess.Popen[str]] = []
    try:
        postgres.prepare("bench")
        asyncio.run(apply_migrations(postgres.owner_url("bench")))
        settings = Settings(
            database_url=postgres.app_url("bench"),
            owner_database_url=postgres.owner_url("bench"),
            signing_keys_dir=workdir / "keys",
        )
        write_new_key(workdir / "keys")
        tenant, user = asyncio.run(seed(settings))
        token = TokenIssuer.from_settings(settings).issue(user, tenant, Role.OWNER)
        env = {
            **os.environ,
            "CLOOP_DATABASE_URL": settings.database_url,
            "CLOOP_OWNER_DATABASE_URL": settings.owner_database_url,
            "CLOOP_SIGNING_KEYS_DIR": str(workdir / "keys"),
            "CLOOP_LOG_LEVEL": "WARNING",
        }
        app_server, app_port = _start("app", env)
        bare_server, bare_port = _start("bare", env)
        servers += [app_server, bare_server]
        postmaster = int((next(workdir.glob("pg/**/postmaster.pid"))).read_text().split()[0])
        bare = Target(bare_port, "/bare", {}, bare_server.pid)
        bearer = {"Authorization": f"Bearer {token}"}
        app = Target(app_port, "/api/v1/sites", bearer, app_server.pid, postmaster)
        bare_rounds, app_rounds = compare(bare, app)
        report("bare FastAPI GET /bare", bare_rounds)
        report(f"authenticated GET /api/v1/sites ({SITES} sites)", app_rounds)
        ratios = sorted(a.rps / b.rps for a, b in zip(app_rounds, bare_rounds, strict=True))
        # The servers are single processes, so their CPU time per request bounds their rate.
        cpu_ratio = median(bare_rounds, "cpu_ms") / median(app_rounds, "cpu_ms")
        print(
            f"ratio per round pair: {' '.join(f'{r:.2f}' for r in ratios)}"
            f" (median {statistics.median(ratios):.2f}, spread {ratios[-1] - ratios[0]:.2f});"
            f" server CPU-time ratio {cpu_ratio:.2f}"
        )
        print(
            f"rps={median(app_rounds, 'rps'):.0f} bare_rps={median(bare_rounds, 'rps'):.0f}"
            f" ratio={statistics.median(ratios):.2f} p50_ms={median(app_rounds, 'p50_ms'):.2f}"
            f" p99_ms={median(app_rounds, 'p99_ms'):.2f}"
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
