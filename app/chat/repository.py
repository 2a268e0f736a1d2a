"""SQL of chat sessions, messages and metered AI usage (under RLS)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from app.core.db import TenantConnection
from app.core.tenancy import TenantId


async def find_session(
    conn: TenantConnection,
    tenant_id: TenantId,
    site_id: uuid.UUID,
    session_id: uuid.UUID,
    visitor_id: str,
) -> bool:
    """Whether this session exists on this site for this visitor (else a new one starts)."""
    cur = await conn.execute(
        "SELECT 1 FROM chat_sessions WHERE tenant_id = %s AND site_id = %s AND id = %s"
        " AND visitor_id = %s",
        [tenant_id, site_id, session_id, visitor_id],
    )
    return await cur.fetchone() is not None


async def insert_session(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, visitor_id: str
) -> uuid.UUID:
    cur = await conn.execute(
        "INSERT INTO chat_sessions (tenant_id, site_id, visitor_id) VALUES (%s, %s, %s)"
        " RETURNING id",
        [tenant_id, site_id, visitor_id],
    )
    row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def recent_turns(
    conn: TenantConnection, tenant_id: TenantId, session_id: uuid.UUID, limit: int
) -> list[dict[str, Any]]:
    """The session's last `limit` successful messages, oldest first."""
    cur = await conn.execute(
        "SELECT role, content FROM (SELECT id, role, content FROM chat_messages"
        " WHERE tenant_id = %s AND session_id = %s AND outcome = 'ok'"
        " ORDER BY id DESC LIMIT %s) AS recent ORDER BY id",
        [tenant_id, session_id, limit],
    )
    return await cur.fetchall()


async def insert_message(
    conn: TenantConnection,
    tenant_id: TenantId,
    session_id: uuid.UUID,
    *,
    visitor_id: str,
    role: str,
    content: str,
    answered: bool | None = None,
    outcome: str = "ok",
    sources: list[dict[str, str]] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO chat_messages (tenant_id, session_id, visitor_id, role, content, answered,"
        " outcome, sources) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
        [
            tenant_id,
            session_id,
            visitor_id,
            role,
            content,
            answered,
            outcome,
            json.dumps(sources or []),
        ],
    )
    await conn.execute(
        "UPDATE chat_sessions SET last_message_at = now() WHERE tenant_id = %s AND id = %s",
        [tenant_id, session_id],
    )


async def cost_today(conn: TenantConnection, tenant_id: TenantId) -> int:
    """Millionths of a euro spent on the provider today (UTC)."""
    cur = await conn.execute(
        "SELECT cost_micro_eur FROM ai_usage"
        " WHERE tenant_id = %s AND day = (now() AT TIME ZONE 'UTC')::date",
        [tenant_id],
    )
    row = await cur.fetchone()
    return int(row["cost_micro_eur"]) if row else 0


async def add_usage(
    conn: TenantConnection, tenant_id: TenantId, tokens_in: int, tokens_out: int, cost: int
) -> None:
    await conn.execute(
        "INSERT INTO ai_usage (tenant_id, day, calls, tokens_in, tokens_out, cost_micro_eur)"
        " VALUES (%s, (now() AT TIME ZONE 'UTC')::date, 1, %s, %s, %s)"
        " ON CONFLICT (tenant_id, day) DO UPDATE SET calls = ai_usage.calls + 1,"
        " tokens_in = ai_usage.tokens_in + excluded.tokens_in,"
        " tokens_out = ai_usage.tokens_out + excluded.tokens_out,"
        " cost_micro_eur = ai_usage.cost_micro_eur + excluded.cost_micro_eur",
        [tenant_id, tokens_in, tokens_out, cost],
    )
