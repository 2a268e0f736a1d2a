"""SQL of analytics. Visitors who restricted processing or objected to it (GDPR-18/21)
are left out of every figure."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import sql

from app.core.db import TenantConnection
from app.core.tenancy import TenantId

_COUNTED = sql.SQL(
    "NOT EXISTS (SELECT 1 FROM processing_restrictions r WHERE r.tenant_id = {t}.tenant_id"
    " AND (r.visitor_id IS NULL OR r.visitor_id = {t}.visitor_id)"
    " AND r.kind IN ('restriction', 'objection'))"
)


def _counted(alias: str) -> sql.Composed:
    return _COUNTED.format(t=sql.Identifier(alias))


async def conversations_per_day(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, days: int
) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT (s.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS count"
        " FROM chat_sessions s WHERE s.tenant_id = %s AND s.site_id = %s"
        " AND s.created_at >= now() - make_interval(days => %s) AND {}"
        " AND EXISTS (SELECT 1 FROM chat_messages m WHERE m.session_id = s.id)"
        " GROUP BY day ORDER BY day"
    ).format(_counted("s"))
    cur = await conn.execute(query, [tenant_id, site_id, days])
    return await cur.fetchall()


async def top_questions(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, days: int, limit: int
) -> list[dict[str, Any]]:
    """Questions grouped by their normalised text (case, punctuation and spacing ignored)."""
    query = sql.SQL(
        "SELECT min(m.content) AS question, count(*) AS count FROM chat_messages m"
        " JOIN chat_sessions s ON s.id = m.session_id"
        " WHERE m.tenant_id = %s AND s.site_id = %s AND m.role = 'user'"
        " AND m.created_at >= now() - make_interval(days => %s) AND {}"
        " GROUP BY btrim(regexp_replace(lower(m.content), '[^[:alnum:]]+', ' ', 'g'))"
        " ORDER BY count DESC, question LIMIT %s"
    ).format(_counted("m"))
    cur = await conn.execute(query, [tenant_id, site_id, days, limit])
    return await cur.fetchall()


async def unanswered(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, days: int, limit: int
) -> list[dict[str, Any]]:
    """Visitor questions whose answer found nothing in the knowledge base."""
    query = sql.SQL(
        "SELECT q.content AS question, q.created_at AS asked_at FROM chat_messages a"
        " JOIN chat_sessions s ON s.id = a.session_id"
        " JOIN LATERAL (SELECT content, created_at FROM chat_messages u"
        "   WHERE u.session_id = a.session_id AND u.role = 'user' AND u.id < a.id"
        "   ORDER BY u.id DESC LIMIT 1) q ON true"
        " WHERE a.tenant_id = %s AND s.site_id = %s AND a.role = 'assistant'"
        " AND a.answered IS FALSE AND a.created_at >= now() - make_interval(days => %s) AND {}"
        " ORDER BY a.created_at DESC LIMIT %s"
    ).format(_counted("a"))
    cur = await conn.execute(query, [tenant_id, site_id, days, limit])
    return await cur.fetchall()


async def leads_per_day(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, days: int
) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT (l.consented_at AT TIME ZONE 'UTC')::date AS day, count(*) AS count FROM leads l"
        " WHERE l.tenant_id = %s AND l.site_id = %s"
        " AND l.consented_at >= now() - make_interval(days => %s) AND {}"
        " GROUP BY day ORDER BY day"
    ).format(_counted("l"))
    cur = await conn.execute(query, [tenant_id, site_id, days])
    return await cur.fetchall()
