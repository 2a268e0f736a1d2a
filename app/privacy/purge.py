"""The daily privacy job: purge erased tenants and accounts, enforce conversation retention,
report overdue data-subject requests. ``python -m app.privacy.purge`` (owner role).

Every step is idempotent and commits in small batches, so a purge killed half-way resumes
where it stopped on the next run: rows still present are found again by the same plan, and
deleting an object that is already gone is a no-op.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from app.audit.service import SUCCESS, record_auth_event
from app.core.db import Connection, Database
from app.core.logging import configure_logging, log_event
from app.core.settings import get_settings
from app.core.tenancy import TenantId
from app.knowledge.storage import ObjectStore, StorageSettings
from app.privacy import repository, service
from app.privacy.catalog import Catalog, Plan, Subject, SubjectKind, Where, load_catalog

log = logging.getLogger("cloop.privacy")

OBJECT_KEY_COLUMNS = ("object_key",)  # columns naming an object in the upload bucket
CONVERSATIONS = "chat_sessions"
# The conversation's last activity, first one present wins.
_ACTIVITY_COLUMNS = ("last_message_at", "updated_at", "created_at")


class Objects(Protocol):
    """The object store as the purge needs it (``app.knowledge.storage.ObjectStore``)."""

    async def delete(self, key: str) -> None: ...

    async def delete_tenant(self, tenant_id: TenantId) -> int: ...


@dataclass(frozen=True)
class Pace:
    """Rows per transaction, and a pause between batches to spare a busy database."""

    batch_size: int = 500
    pause_s: float = 0.0


async def purge_erasures(jan: Janitor) -> int:
    """Purge every pending tenant, then account, erasure; returns how many were purged."""
    purged = 0
    while True:
        async with jan.db.owner() as conn:
            pending = await repository.pending_erasures(conn)
        if not pending:
            return purged
        for marker in pending:
            await _purge_one(jan, marker)
            purged += 1


async def _purge_one(jan: Janitor, marker: dict[str, Any]) -> None:
    kind = SubjectKind(marker["subject_kind"])
    subject_id: uuid.UUID = marker["subject_id"]
    async with jan.db.owner() as conn:
        catalog = await load_catalog(conn)
        if kind is SubjectKind.TENANT:
            # Accounts left without any tenant go too; marked before memberships disappear.
            for user_id in await repository.sole_member_users(conn, subject_id):
                name = service.pseudonym(SubjectKind.ACCOUNT, str(user_id))
                await repository.insert_erasure(conn, SubjectKind.ACCOUNT, user_id, name)
            subject = service.tenant_subject(TenantId(subject_id))
        else:
            subject = await _account(conn, subject_id)
    plan = catalog.plan(subject)
    name = str(marker["subject_pseudonym"])
    removed = await jan.drain(catalog, plan, name)
    if kind is SubjectKind.TENANT:
        removed["objects"] = await jan.objects.delete_tenant(TenantId(subject_id))
    async with jan.db.owner() as conn:
        await repository.mark_purged(conn, marker["id"])
        await repository.close_erasure_requests(conn, name)
        await record_auth_event(
            conn,
            event="privacy.erasure_completed",
            actor=None,
            tenant_id=None,
            ip=None,
            outcome=SUCCESS,
            detail={
                "subject_kind": kind.value,
                "subject": name,
                "requested_at": marker["requested_at"].isoformat(),
            },
        )
    log_event(log, "erasure purged", subject_kind=kind.value, subject=name, removed=removed)


async def _account(conn: Connection, user_id: uuid.UUID) -> Subject:
    """The account subject; its e-mail is gone if a previous run already removed the user."""
    email = await repository.user_email(conn, user_id)
    return Subject(SubjectKind.ACCOUNT, (str(user_id),), email=email)


@dataclass(frozen=True)
class Janitor:
    """Runs plans against the database and the object store at the given pace."""

    db: Database
    objects: Objects
    pace: Pace

    async def drain(self, catalog: Catalog, plan: Plan, name: str) -> dict[str, int]:
        """Run a plan in batches, each its own transaction; objects go before their rows."""
        for update in plan.updates:
            async with self.db.owner() as conn:
                value = name if update.pseudonymise else None
                await repository.apply_update(conn, update, value)
        removed: dict[str, int] = {}
        for table, where in plan.deletions.items():
            keys = tuple(c for c in OBJECT_KEY_COLUMNS if catalog.tables[table].has(c))
            removed[table] = await self._drain_table(table, where, keys)
        return removed

    async def _drain_table(self, table: str, where: Where, keys: tuple[str, ...]) -> int:
        total = 0
        while True:
            async with self.db.owner() as conn:
                rows = await repository.delete_batch(conn, table, where, self.pace.batch_size, keys)
                # Deleted inside the open transaction: if this fails, the rows come back.
                for key in _keys(rows, keys):
                    await self.objects.delete(key)
            total += len(rows)
            if len(rows) < self.pace.batch_size:
                return total
            await anyio.sleep(self.pace.pause_s)


def _keys(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> list[str]:
    return [str(row[c]) for row in rows for c in columns if row.get(c)]


async def enforce_retention(jan: Janitor) -> int:
    """Delete conversations (and what references them) past each tenant's retention."""
    async with jan.db.owner() as conn:
        catalog = await load_catalog(conn)
        cutoffs = await repository.retention_cutoffs(conn, service.DEFAULT_RETENTION_MONTHS)
    table = catalog.tables.get(CONVERSATIONS)
    if table is None:
        return 0
    column = next(c for c in _ACTIVITY_COLUMNS if table.has(c))
    removed = 0
    for row in cutoffs:
        expired = Where(repository.older_than(column), (row["tenant_id"], row["cutoff"]))
        plan = catalog.cascade({CONVERSATIONS: [expired]})
        counts = await jan.drain(catalog, plan, "")
        removed += counts.get(CONVERSATIONS, 0)
    log_event(log, "conversation retention", conversations_removed=removed)
    return removed


async def report_overdue(db: Database) -> int:
    """One warning line per overdue request or erasure; returns how many."""
    async with db.owner() as conn:
        requests = await repository.overdue_requests_all(conn)
        erasures = await repository.overdue_erasures(conn)
    for row in requests:
        service.log_overdue(row, row["tenant_id"])
    for row in erasures:
        log_event(
            log,
            "erasure overdue",
            logging.WARNING,
            subject_kind=row["subject_kind"],
            subject=row["subject_pseudonym"],
            due_at=row["due_at"].isoformat(),
        )
    return len(requests) + len(erasures)


async def run(jan: Janitor, steps: list[str]) -> dict[str, int]:
    results: dict[str, int] = {}
    if "purge" in steps:
        results["erasures_purged"] = await purge_erasures(jan)
    if "retention" in steps:
        results["conversations_expired"] = await enforce_retention(jan)
    if "overdue" in steps:
        results["overdue"] = await report_overdue(jan.db)
    return results


def _objects() -> Objects:
    return ObjectStore(StorageSettings())


async def _main(args: argparse.Namespace) -> dict[str, int]:
    settings = get_settings()
    db = Database(settings.database_url, settings.owner_database_url, min_size=1, max_size=2)
    await db.open()
    try:
        pace = Pace(args.batch_size, args.pause_ms / 1000)
        return await run(Janitor(db, _objects(), pace), args.steps)
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.privacy.purge", description=__doc__)
    parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction")
    parser.add_argument("--pause-ms", type=int, default=0, help="pause between batches")
    parser.add_argument(
        "--steps",
        nargs="+",
        choices=["purge", "retention", "overdue"],
        default=["purge", "retention", "overdue"],
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.pause_ms < 0:
        parser.error("--batch-size must be >= 1 and --pause-ms >= 0")
    configure_logging(get_settings().log_level)
    try:
        results = asyncio.run(_main(args))
    except Exception as exc:  # a CLI answers with one line, never a traceback
        print(f"privacy job failed: {exc}", file=sys.stderr)
        return 1
    print(" ".join(f"{k}={v}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
