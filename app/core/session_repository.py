"""SQL of refresh tokens and memberships as sessions need them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from psycopg import sql

from app.core.db import Database, TenantConnection
from app.core.tenancy import TenantId
from app.privacy.checks import ERASURE_PENDING

# The member's role (NULL: not a member) and a pending erasure of them or their tenant.
_ACCESS = sql.SQL(
    "SELECT (SELECT role FROM memberships"
    " WHERE tenant_id = %(tenant_id)s AND user_id = %(user_id)s) AS role,"
    " {} AS erasure_pending"
).format(ERASURE_PENDING)


@asynccontextmanager
async def member_transaction(
    db: Database, tenant_id: TenantId, user_id: uuid.UUID
) -> AsyncIterator[tuple[TenantConnection, str | None, str | None]]:
    """``db.tenant(tenant_id)`` with the user's current role there and the kind of a pending
    erasure ('account', 'tenant' or None), read in the transaction's first round trip."""
    params = {"tenant_id": tenant_id, "user_id": user_id}
    async with db.tenant_checked(tenant_id, _ACCESS, params) as (conn, row):
        role, erasure = (row["role"], row["erasure_pending"]) if row else (None, None)
        yield conn, role, erasure


async def membership_role(
    conn: TenantConnection, tenant_id: TenantId, user_id: uuid.UUID
) -> str | None:
    cur = await conn.execute(
        "SELECT role FROM memberships WHERE tenant_id = %s AND user_id = %s", [tenant_id, user_id]
    )
    row = await cur.fetchone()
    return None if row is None else str(row["role"])


async def insert_refresh_token(
    conn: TenantConnection,
    tenant_id: TenantId,
    *,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    token_hash: bytes,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (tenant_id, user_id, family_id, token_hash, expires_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        [tenant_id, user_id, family_id, token_hash, expires_at],
    )


async def lock_refresh_token(
    conn: TenantConnection, tenant_id: TenantId, token_hash: bytes
) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT id, user_id, family_id, expires_at < now() AS expired, used_at, revoked_at"
        " FROM refresh_tokens WHERE tenant_id = %s AND token_hash = %s FOR UPDATE",
        [tenant_id, token_hash],
    )
    return await cur.fetchone()


async def mark_used(conn: TenantConnection, tenant_id: TenantId, token_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = now() WHERE tenant_id = %s AND id = %s",
        [tenant_id, token_id],
    )


async def revoke_family(conn: TenantConnection, tenant_id: TenantId, family_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now()"
        " WHERE tenant_id = %s AND family_id = %s AND revoked_at IS NULL",
        [tenant_id, family_id],
    )


async def revoke_user(conn: TenantConnection, tenant_id: TenantId, user_id: uuid.UUID) -> None:
    """End every session of a user in a tenant (removal, role change)."""
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now()"
        " WHERE tenant_id = %s AND user_id = %s AND revoked_at IS NULL",
        [tenant_id, user_id],
    )
