"""An authenticated, tenant-scoped read (GET /api/v1/sites) at 32 concurrent clients, next to a
bare FastAPI endpoint measured in the same run on the same uvicorn settings.

Both servers are real uvicorn processes on loopback (one worker each); the load generator is a
minimal HTTP/1.1 keep-alive client on raw asyncio streams, so the client costs far less than
the servers and the ratio reflects the platform's per-request work (JWT check, pooled
connection, tenant transaction, membership re-check, query, serialisation).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
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
from app.tenants import service as tenants
from app.users.service import ensure_user

CLIENTS = 32
WARMUP_S = 2.0
ROUNDS = 5
ROUND_S = 3.0
SITES = 5


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> list[dict[str, str]]:
        return [{"id": "1", "name": "Site"}]

    return app


def serve(kind: str) -> None:
    """Child process: bind a free loopback port, print it, serve until terminated."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
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


def summary(latencies: list[float], seconds: float) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms)."""
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, cuts[49] * 1000, cuts[98] * 1000


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


def report(what: str, rps: float, p50: float, p99: float) -> None:
    print(f"{what}: {rps:.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, {CLIENTS} clients")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["app", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    workdir = Path(tempfile.mkdtemp(prefix="cloop-bench-"))
    postgres = embedded.start(workdir / "pg", delete_on_exit=True)
    children: list[subprocess.Popen[str]] = []
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
        children += [app_server, bare_server]
        bare_target = (bare_port, "/bare", {})
        app_target = (app_port, "/api/v1/sites", {"Authorization": f"Bearer {token}"})
        for target in (bare_target, app_target):
            measure(*target, WARMUP_S)
        # Alternate short rounds, so that a change of machine load hits both sides alike.
        bare_all: list[float] = []
        app_all: list[float] = []
        ratios = []
        for _ in range(ROUNDS):
            bare_lat, app_lat = measure(*bare_target, ROUND_S), measure(*app_target, ROUND_S)
            bare_all += bare_lat
            app_all += app_lat
            ratios.append(len(app_lat) / len(bare_lat))
        bare = summary(bare_all, ROUND_S * ROUNDS)
        rps, p50, p99 = summary(app_all, ROUND_S * ROUNDS)
        report("bare FastAPI GET /bare", *bare)
        report(f"authenticated GET /api/v1/sites ({SITES} sites)", rps, p50, p99)
        print("ratio per round: " + " ".join(f"{r:.2f}" for r in ratios))
        ratio = statistics.median(ratios)
        print(
            f"rps={rps:.0f} bare_rps={bare[0]:.0f} ratio={ratio:.2f} p50_ms={p50:.2f} p99_ms={p99:.2f}"
        )
    finally:
        for child in children:
            child.terminate()
            child.wait(timeout=10)
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
