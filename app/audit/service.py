"""Audit rules: an auth event is one JSON log line plus one row; site changes keep before/after."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.audit import repository
from app.core.db import Connection, Database, TenantConnection
from app.core.logging import log_event
from app.core.tenancy import TenantId

if TYPE_CHECKING:  # app.core.security records its events here
    from app.core.security import Principal

log = logging.getLogger("cloop.audit")

SUCCESS = "success"
FAILURE = "failure"


async def record_auth_event(
    conn_or_db: Connection | Database,
    *,
    event: str,
    actor: str | None,
    tenant_id: TenantId | None,
    ip: str | None,
    outcome: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit row and one JSON log line (LOG-1).

    Pass a connection to write inside the caller's transaction (it must be scoped to
    ``tenant_id``); pass the Database to write in a transaction of its own.
    """
    detail = detail or {}
    async with _connection(conn_or_db, tenant_id) as conn:
        await repository.insert_auth_event(
            conn,
            tenant_id=tenant_id,
            event=event,
            actor=actor,
            ip=ip,
            outcome=outcome,
            detail=detail,
        )
    log_event(
        log,
        "auth event",
        logging.INFO if outcome == SUCCESS else logging.WARNING,
        auth_event=event,
        actor=actor,
        tenant_id=str(tenant_id) if tenant_id else None,
        ip=ip,
        outcome=outcome,
        detail=detail,
    )


async def record_member_action(
    conn: Connection,
    principal: Principal,
    event: str,
    detail: dict[str, Any],
    *,
    ip: str | None = None,
) -> None:
    """A successful change a signed-in member made in their own tenant (LOG-1)."""
    await record_auth_event(
        conn, event=event, actor=str(principal.user_id), tenant_id=principal.tenant_id,
        ip=ip, outcome=SUCCESS, detail=detail,
    )  # fmt: skip


@asynccontextmanager
async def _connection(
    conn_or_db: Connection | Database, tenant_id: TenantId | None
) -> AsyncIterator[Connection]:
    """The caller's connection, or a transaction of its own scoped to ``tenant_id``."""
    if not isinstance(conn_or_db, Database):
        yield conn_or_db
    elif tenant_id is None:
        async with conn_or_db.unscoped() as conn:
            yield conn
    else:
        async with conn_or_db.tenant(tenant_id) as tconn:
            yield tconn


async def record_site_change(
    conn: TenantConnection,
    *,
    actor: str,
    tenant_id: TenantId,
    site_id: uuid.UUID,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    kind: str = "settings",
) -> None:
    """Who changed a site's settings (or KB, tokens: ``kind``), when, before and after (LOG-2)."""
    await repository.insert_site_change(
        conn, tenant_id, site_id=site_id, kind=kind, actor=actor, before=before, after=after
    )
    log_event(
        log, "site change", tenant_id=str(tenant_id), site_id=str(site_id), kind=kind, actor=actor
    )


async def list_auth_events(
    conn: TenantConnection, tenant_id: TenantId, *, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    return await repository.list_auth_events(conn, tenant_id, limit=limit, before_id=before_id)


async def list_site_changes(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, *, limit: int
) -> list[dict[str, Any]]:
    return await repository.list_site_changes(conn, tenant_id, site_id, limit=limit)


async def purge_expired(db: Database, retention_days: int) -> dict[str, int]:
    """Remove audit rows past the retention period (LOG-3); run daily by a timer."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    async with db.owner() as conn:
        counts = await repository.purge_older_than(conn, cutoff)
    log_event(log, "audit purge", cutoff=cutoff.isoformat(), **counts)
    return counts
