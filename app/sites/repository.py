"""SQL of sites (under RLS; every function takes the tenant scope)."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import sql

from app.core.db import TenantConnection
from app.core.tenancy import TenantId

COLUMNS = ("name", "allowed_origins", "persona", "language", "phase")
_SITE = sql.SQL("id, name, allowed_origins, persona, language, phase, created_at, updated_at")


async def list_sites(conn: TenantConnection, tenant_id: TenantId) -> list[dict[str, Any]]:
    query = sql.SQL("SELECT {} FROM sites WHERE tenant_id = %s ORDER BY created_at, id")
    cur = await conn.execute(query.format(_SITE), [tenant_id])
    return await cur.fetchall()


async def count_sites(conn: TenantConnection, tenant_id: TenantId) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM sites WHERE tenant_id = %s", [tenant_id])
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def get_site(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    """The site, or None; ``lock`` holds its row until the transaction ends (read-modify-write)."""
    query = sql.SQL("SELECT {} FROM sites WHERE tenant_id = %s AND id = %s {}").format(
        _SITE, sql.SQL("FOR UPDATE" if lock else "")
    )
    cur = await conn.execute(query, [tenant_id, site_id])
    return await cur.fetchone()


async def insert_site(
    conn: TenantConnection, tenant_id: TenantId, values: dict[str, Any]
) -> dict[str, Any]:
    query = sql.SQL(
        "INSERT INTO sites (tenant_id, name, allowed_origins, persona, language, phase)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING {}"
    ).format(_SITE)
    cur = await conn.execute(query, [tenant_id, *(values[c] for c in COLUMNS)])
    row = await cur.fetchone()
    assert row is not None
    return row


async def update_site(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    """Set the changed columns; names come from ``COLUMNS``, values are parameters."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(col), sql.Placeholder())
        for col in COLUMNS
        if col in changes
    )
    query = sql.SQL(
        "UPDATE sites SET {}, updated_at = now() WHERE tenant_id = %s AND id = %s RETURNING {}"
    ).format(assignments, _SITE)
    cur = await conn.execute(
        query, [*(changes[c] for c in COLUMNS if c in changes), tenant_id, site_id]
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def delete_site(conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM sites WHERE tenant_id = %s AND id = %s", [tenant_id, site_id])
