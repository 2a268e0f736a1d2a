"""Privileged jobs for timers and operators: ``python -m app.jobs COMMAND``.

purge-audit               delete audit rows older than the retention (daily systemd timer)
set-plan TENANT PLAN      change a tenant's plan (free, pro, team)
new-signing-key DIR       add an access-token signing key (rotation)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.audit.service import purge_expired
from app.core.db import Database
from app.core.logging import configure_logging
from app.core.plans import Plan
from app.core.security import write_new_key
from app.core.settings import Settings, get_settings
from app.core.tenancy import TenantId
from app.tenants.service import set_plan


async def _with_db(settings: Settings, job: Callable[[Database], Awaitable[str]]) -> str:
    db = Database(settings.database_url, settings.owner_database_url, min_size=1, max_size=1)
    await db.open(timeout=5)
    try:
        return await job(db)
    finally:
        await db.close()


def _run(args: argparse.Namespace, settings: Settings) -> str:
    if args.command == "purge-audit":

        async def purge(db: Database) -> str:
            counts = await purge_expired(db, settings.audit_retention_days)
            return " ".join(f"{table}={n}" for table, n in counts.items())

        return asyncio.run(_with_db(settings, purge))
    if args.command == "set-plan":
        tenant_id, plan = TenantId(uuid.UUID(args.tenant)), Plan(args.plan)

        async def change(db: Database) -> str:
            await set_plan(db, tenant_id, plan)
            return f"tenant {tenant_id} is on the {plan.value} plan"

        return asyncio.run(_with_db(settings, change))
    return f"new signing key: {write_new_key(Path(args.directory))}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.jobs", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("purge-audit", help="delete audit rows past the retention period")
    plan = commands.add_parser("set-plan", help="change a tenant's plan")
    plan.add_argument("tenant", help="tenant id (uuid)")
    plan.add_argument("plan", choices=[p.value for p in Plan])
    key = commands.add_parser("new-signing-key", help="add a signing key to CLOOP_SIGNING_KEYS_DIR")
    key.add_argument("directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        print(_run(args, settings))
    except Exception as exc:  # a CLI answers with one line, never a traceback
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
