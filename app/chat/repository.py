"""SQL of chat sessions, messages and metered AI usage (under RLS)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from psycopg import AsyncCursor
from psycopg.rows import DictRow

from app.ai.prompt import Turn
from app.core.db import TenantConnection
from app.core.tenancy import TenantId

_STORE_QUESTION = """
WITH found AS (
    SELECT id FROM chat_sessions WHERE tenant_id = %(tenant)s AND site_id = %(site)s
    AND id = %(session)s AND visitor_id = %(visitor)s
), created AS (
    INSERT INTO chat_sessions (tenant_id, site_id, visitor_id)
    SELECT %(tenant)s, %(site)s, %(visitor)s WHERE NOT EXISTS (SELECT 1 FROM found)
    RETURNING id
), session AS (
    SELECT id FROM found UNION ALL SELECT id FROM created
), touched AS (
    UPDATE chat_sessions SET last_message_at = now()
    WHERE tenant_id = %(tenant)s AND id IN (SELECT id FROM found)
), stored AS (
    INSERT INTO chat_messages (tenant_id, session_id, visitor_id, role, content)
    SELECT %(tenant)s, id, %(visitor)s, 'user', %(content)s FROM session
)
SELECT session.id AS session_id,
    (SELECT coalesce(json_agg(json_build_array(role, content) ORDER BY id), '[]')
     FROM (SELECT id, role, content FROM chat_messages
           WHERE tenant_id = %(tenant)s AND session_id IN (SELECT id FROM found)
           AND outcome = 'ok' ORDER BY id DESC LIMIT %(turns)s) AS recent) AS history,
    coalesce((SELECT cost_micro_eur FROM ai_usage WHERE tenant_id = %(tenant)s
              AND day = (now() AT TIME ZONE 'UTC')::date), 0) AS spent
FROM session
"""


@dataclass(frozen=True)
class StoredQuestion:
    """Where a visitor's message went and what answering it needs from the database."""

    session_id: uuid.UUID
    history: tuple[Turn, ...]  # the session's last successful turns before it, oldest first
    spent: int  # millionths of a euro spent on the provider today (UTC)


async def send_store_question(
    conn: TenantConnection,
    tenant_id: TenantId,
    site_id: uuid.UUID,
    *,
    session_id: uuid.UUID | None,
    visitor_id: str,
    content: str,
    turns: int,
) -> AsyncCursor[DictRow]:
    """Store the visitor's message in its session (a new one if `session_id` is not this
    visitor's on this site) and read its recent turns and today's cost, in one statement.
    Returns the cursor unread, so that a pipeline can send more before the round trip."""
    params = {"tenant": tenant_id, "site": site_id, "session": session_id,
              "visitor": visitor_id, "content": content, "turns": turns}  # fmt: skip
    return await conn.execute(_STORE_QUESTION, params)


async def stored_question(cur: AsyncCursor[DictRow]) -> StoredQuestion:
    row = await cur.fetchone()
    assert row is not None
    history = tuple(
        Turn("assistant" if role == "assistant" else "user", str(content))
        for role, content in row["history"]
    )
    return StoredQuestion(uuid.UUID(str(row["session_id"])), history, int(row["spent"]))


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
