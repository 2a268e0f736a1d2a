"""Helpers of the platform tests: catalog reads and snapshots of a tenant's data."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from app.core.db import Database
from tests.app.conftest import TenantFixture

TENANT_TABLES = """
    SELECT c.relname AS table_name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    ORDER BY c.relname
"""


async def tenant_tables(db: Database) -> list[dict[str, Any]]:
    async with db.owner() as conn:
        cur = await conn.execute(TENANT_TABLES)
        return await cur.fetchall()


async def snapshot(db: Database, tenant: TenantFixture) -> dict[str, list[str]]:
    """Every row of the tenant in every tenant table, its tenant row and its users (owner role)."""
    tables = [row["table_name"] for row in await tenant_tables(db)]
    result: dict[str, list[str]] = {}
    async with db.owner() as conn:
        for table in tables:
            cur = await conn.execute(
                sql.SQL("SELECT to_jsonb(t)::text AS row FROM {} t WHERE tenant_id = %s").format(
                    sql.Identifier(table)
                ),
                [tenant.id],
            )
            result[table] = sorted(row["row"] for row in await cur.fetchall())
        cur = await conn.execute(
            "SELECT to_jsonb(t)::text AS row FROM tenants t WHERE id = %s", [tenant.id]
        )
        result["tenants"] = [row["row"] for row in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT to_jsonb(u)::text AS row FROM users u WHERE id = ANY(%s) ORDER BY id",
            [[tenant.owner.id, tenant.admin.id, tenant.member.id]],
        )
        result["users"] = [row["row"] for row in await cur.fetchall()]
    return result
