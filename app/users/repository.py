"""SQL of users (a global table: a user is not tenant data, memberships are)."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.db import Connection


async def get(conn: Connection, user_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute("SELECT id, email, display_name FROM users WHERE id = %s", [user_id])
    return await cur.fetchone()


async def find_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT id, email, display_name FROM users WHERE lower(email) = lower(%s)", [email]
    )
    return await cur.fetchone()


async def insert(conn: Connection, email: str, display_name: str) -> uuid.UUID:
    cur = await conn.execute(
        "INSERT INTO users (email, display_name) VALUES (%s, %s) RETURNING id",
        [email, display_name],
    )
    row = await cur.fetchone()
    assert row is not None
    user_id: uuid.UUID = row["id"]
    return user_id


async def update_display_name(conn: Connection, user_id: uuid.UUID, display_name: str) -> None:
    await conn.execute(
        "UPDATE users SET display_name = %s, updated_at = now() WHERE id = %s",
        [display_name, user_id],
    )


async def memberships(conn: Connection, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every tenant of a verified user (a SECURITY DEFINER function: the one cross-tenant read)."""
    cur = await conn.execute(
        "SELECT tenant_id, tenant_name, plan, role FROM user_memberships(%s)", [user_id]
    )
    return await cur.fetchall()
