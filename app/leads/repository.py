"""SQL of leads (under RLS)."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.db import TenantConnection
from app.core.tenancy import TenantId


async def insert_lead(
    conn: TenantConnection,
    tenant_id: TenantId,
    site_id: uuid.UUID,
    *,
    values: dict[str, Any],
    consent_text: str,
) -> uuid.UUID:
    cur = await conn.execute(
        "INSERT INTO leads (tenant_id, site_id, session_id, visitor_id, email, name, consent_text)"
        " VALUES (%s, %s, (SELECT id FROM chat_sessions WHERE tenant_id = %s AND id = %s"
        " AND visitor_id = %s), %s, %s, %s, %s) RETURNING id",
        [
            tenant_id,
            site_id,
            tenant_id,
            values["session_id"],
            values["visitor_id"],
            values["visitor_id"],
            values["email"],
            values["name"],
            consent_text,
        ],
    )
    row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def list_leads(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, email, name, visitor_id, session_id, consent_text, consented_at FROM leads"
        " WHERE tenant_id = %s AND site_id = %s ORDER BY consented_at DESC, id",
        [tenant_id, site_id],
    )
    return await cur.fetchall()
