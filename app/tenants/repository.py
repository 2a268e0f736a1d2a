"""SQL of tenants, memberships and invitations (all under RLS: every function takes the scope)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.core.db import TenantConnection
from app.core.tenancy import TenantId


async def insert_tenant(conn: TenantConnection, tenant_id: TenantId, name: str) -> None:
    await conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", [tenant_id, name])


async def get_tenant(conn: TenantConnection, tenant_id: TenantId) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT id, name, plan, created_at FROM tenants WHERE id = %s", [tenant_id]
    )
    return await cur.fetchone()


async def rename_tenant(conn: TenantConnection, tenant_id: TenantId, name: str) -> None:
    await conn.execute("UPDATE tenants SET name = %s WHERE id = %s", [name, tenant_id])


async def set_plan(conn: TenantConnection, tenant_id: TenantId, plan: str) -> bool:
    cur = await conn.execute("UPDATE tenants SET plan = %s WHERE id = %s", [plan, tenant_id])
    return cur.rowcount == 1


async def list_members(conn: TenantConnection, tenant_id: TenantId) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT m.user_id, u.email, u.display_name, m.role, m.created_at AS joined_at"
        " FROM memberships m JOIN users u ON u.id = m.user_id"
        " WHERE m.tenant_id = %s ORDER BY m.created_at, u.email",
        [tenant_id],
    )
    return await cur.fetchall()


async def insert_membership(
    conn: TenantConnection, tenant_id: TenantId, user_id: uuid.UUID, role: str
) -> bool:
    """False if the user already is a member (their role is kept)."""
    cur = await conn.execute(
        "INSERT INTO memberships (tenant_id, user_id, role) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        [tenant_id, user_id, role],
    )
    return cur.rowcount == 1


async def lock_membership(
    conn: TenantConnection, tenant_id: TenantId, user_id: uuid.UUID
) -> str | None:
    cur = await conn.execute(
        "SELECT role FROM memberships WHERE tenant_id = %s AND user_id = %s FOR UPDATE",
        [tenant_id, user_id],
    )
    row = await cur.fetchone()
    return None if row is None else str(row["role"])


async def count_owners(conn: TenantConnection, tenant_id: TenantId) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM memberships WHERE tenant_id = %s AND role = 'owner'",
        [tenant_id],
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def update_role(
    conn: TenantConnection, tenant_id: TenantId, user_id: uuid.UUID, role: str
) -> None:
    await conn.execute(
        "UPDATE memberships SET role = %s WHERE tenant_id = %s AND user_id = %s",
        [role, tenant_id, user_id],
    )


async def delete_membership(
    conn: TenantConnection, tenant_id: TenantId, user_id: uuid.UUID
) -> None:
    await conn.execute(
        "DELETE FROM memberships WHERE tenant_id = %s AND user_id = %s", [tenant_id, user_id]
    )


async def insert_invitation(
    conn: TenantConnection,
    tenant_id: TenantId,
    *,
    email: str,
    role: str,
    token_hash: bytes,
    invited_by: uuid.UUID,
    expires_at: datetime,
) -> dict[str, Any]:
    cur = await conn.execute(
        "INSERT INTO invitations (tenant_id, email, role, token_hash, invited_by, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " RETURNING id, email, role, created_at, expires_at, accepted_at",
        [tenant_id, email, role, token_hash, invited_by, expires_at],
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_invitations(conn: TenantConnection, tenant_id: TenantId) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, email, role, created_at, expires_at, accepted_at FROM invitations"
        " WHERE tenant_id = %s ORDER BY created_at DESC",
        [tenant_id],
    )
    return await cur.fetchall()


async def delete_invitation(
    conn: TenantConnection, tenant_id: TenantId, invitation_id: uuid.UUID
) -> bool:
    cur = await conn.execute(
        "DELETE FROM invitations WHERE tenant_id = %s AND id = %s", [tenant_id, invitation_id]
    )
    return cur.rowcount == 1


async def take_invitation(
    conn: TenantConnection, tenant_id: TenantId, token_hash: bytes
) -> dict[str, Any] | None:
    """Mark an open, unexpired invitation accepted and return it (once)."""
    cur = await conn.execute(
        "UPDATE invitations SET accepted_at = now()"
        " WHERE tenant_id = %s AND token_hash = %s AND accepted_at IS NULL AND expires_at > now()"
        " RETURNING id, email, role",
        [tenant_id, token_hash],
    )
    return await cur.fetchone()
