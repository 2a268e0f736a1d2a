"""SQL of the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from app.core.db import Connection, TenantConnection
from app.core.tenancy import TenantId


async def insert_auth_event(
    conn: Connection,
    *,
    tenant_id: TenantId | None,
    event: str,
    actor: str | None,
    ip: str | None,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    """No RETURNING: a row without tenant must stay unreadable to the app role, even here."""
    await conn.execute(
        "INSERT INTO audit_events (tenant_id, event, actor, ip, outcome, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        [tenant_id, event, actor, ip, outcome, Jsonb(detail)],
    )


async def insert_site_change(
    conn: TenantConnection,
    tenant_id: TenantId,
    *,
    site_id: uuid.UUID,
    kind: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await conn.execute(
        "INSERT INTO site_changes (tenant_id, site_id, kind, actor, before, after)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        [tenant_id, site_id, kind, actor, _json(before), _json(after)],
    )


def _json(value: dict[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


async def list_auth_events(
    conn: TenantConnection, tenant_id: TenantId, *, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, occurred_at, event, actor, ip, outcome, detail FROM audit_events"
        " WHERE tenant_id = %s AND (%s::bigint IS NULL OR id < %s)"
        " ORDER BY id DESC LIMIT %s",
        [tenant_id, before_id, before_id, limit],
    )
    return await cur.fetchall()


async def list_site_changes(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, *, limit: int
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, site_id, kind, actor, changed_at, before, after FROM site_changes"
        " WHERE tenant_id = %s AND site_id = %s ORDER BY id DESC LIMIT %s",
        [tenant_id, site_id, limit],
    )
    return await cur.fetchall()


async def purge_older_than(conn: Connection, cutoff: datetime) -> dict[str, int]:
    """Delete audit rows older than ``cutoff`` (owner role: across all tenants)."""
    events = await conn.execute("DELETE FROM audit_events WHERE occurred_at < %s", [cutoff])
    changes = await conn.execute("DELETE FROM site_changes WHERE changed_at < %s", [cutoff])
    return {"audit_events": events.rowcount, "site_changes": changes.rowcount}
