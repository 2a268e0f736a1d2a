"""SQL of embed tokens (under RLS, except the one lookup function the widget uses)."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.db import Connection, TenantConnection
from app.core.tenancy import TenantId


async def insert_token(
    conn: TenantConnection,
    tenant_id: TenantId,
    site_id: uuid.UUID,
    *,
    token_hash: bytes,
    token_prefix: str,
    identity_secret: str | None,
) -> dict[str, Any]:
    cur = await conn.execute(
        "INSERT INTO widget_tokens (tenant_id, site_id, token_hash, token_prefix, identity_secret)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id, site_id, token_prefix,"
        " identity_secret IS NOT NULL AS signed_visitors, created_at, revoked_at",
        [tenant_id, site_id, token_hash, token_prefix, identity_secret],
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_tokens(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, site_id, token_prefix, identity_secret IS NOT NULL AS signed_visitors,"
        " created_at, revoked_at FROM widget_tokens WHERE tenant_id = %s AND site_id = %s"
        " ORDER BY created_at, id",
        [tenant_id, site_id],
    )
    return await cur.fetchall()


async def revoke_token(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, token_id: uuid.UUID
) -> dict[str, Any] | None:
    """Revoke a live token; returns it (with its identity secret) or None if none matched."""
    cur = await conn.execute(
        "UPDATE widget_tokens SET revoked_at = now()"
        " WHERE tenant_id = %s AND site_id = %s AND id = %s AND revoked_at IS NULL"
        " RETURNING id, token_prefix, identity_secret",
        [tenant_id, site_id, token_id],
    )
    return await cur.fetchone()


async def lookup(conn: Connection, token_hash: bytes) -> dict[str, Any] | None:
    """The live token with this hash, its tenant and its site's settings (any tenant)."""
    cur = await conn.execute("SELECT * FROM widget_token_lookup(%s)", [token_hash])
    return await cur.fetchone()
