"""Audit rules: an auth event is one JSON log line plus one row; site changes keep before/after."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.audit import repository
from app.core.db import Connection, Database, TenantConnection
from app.core.logging import log_event
from app.core.tenancy import TenantId

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
    if isinstance(conn_or_db, Database):
        if tenant_id is None:
            async with conn_or_db.unscoped() as conn:
                await _insert(conn, event, actor, None, ip, outcome, detail)
        else:
            async with conn_or_db.tenant(tenant_id) as tconn:
                await _insert(tconn, event, actor, tenant_id, ip, outcome, detail)
    else:
        await _insert(conn_or_db, event, actor, tenant_id, ip, outcome, detail)
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


async def _insert(  # noqa: PLR0917 - a private pass-through of record_auth_event's fields
    conn: Connection,
    event: str,
    actor: str | None,
    tenant_id: TenantId | None,
    ip: str | None,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    await repository.insert_auth_event(
        conn, tenant_id=tenant_id, event=event, actor=actor, ip=ip, outcome=outcome, detail=detail
    )


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
