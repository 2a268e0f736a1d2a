"""Tenant isolation in the database: forced RLS everywhere, nothing without a tenant, and no
tenant carried over by a pooled connection (AUTHZ-1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql

from app.core.db import Connection, Database
from app.core.settings import Settings
from tests.app.conftest import TenantFixture
from tests.app.platform.helpers import tenant_tables
from tests.app.platform.test_platform_matrix import _site

pytestmark = [pytest.mark.anyio, pytest.mark.claim("AUTHZ-1")]


async def test_every_tenant_table_has_forced_rls_and_a_policy(db: Database) -> None:
    tables = await tenant_tables(db)
    assert {"memberships", "sites", "audit_events", "refresh_tokens"} <= {
        t["table_name"] for t in tables
    }
    weak = [t["table_name"] for t in tables if not (t["enabled"] and t["forced"] and t["policies"])]
    assert not weak, f"tables with a tenant_id but without forced RLS and a policy: {weak}"
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT c.relname, pg_get_expr(p.polqual, p.polrelid) AS qual FROM pg_policy p"
            " JOIN pg_class c ON c.oid = p.polrelid WHERE p.polname = 'tenant_isolation'"
        )
        quals = {row["relname"]: row["qual"] for row in await cur.fetchall()}
    for table in [t["table_name"] for t in tables] + ["tenants"]:
        assert "app.tenant_id" in quals.get(table, ""), f"{table}: no tenant_isolation policy"


async def test_app_role_cannot_bypass_rls(db: Database) -> None:
    async with db.unscoped() as conn:
        cur = await conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert await cur.fetchone() == {"rolsuper": False, "rolbypassrls": False}
        cur = await conn.execute(
            "SELECT count(*) AS n FROM pg_class WHERE relowner = current_user::regrole"
        )
        assert await cur.fetchone() == {"n": 0}


async def test_without_a_tenant_queries_see_nothing(
    db: Database, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    await _site(db, tenant)
    await _site(db, other_tenant)
    names = [t["table_name"] for t in await tenant_tables(db)] + ["tenants"]
    async with db.unscoped() as conn:
        for name in names:
            query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(name))
            try:
                async with conn.transaction():  # a savepoint: a refusal must not end the loop
                    row = await (await conn.execute(query)).fetchone()
            except psycopg.errors.InsufficientPrivilege:
                continue  # not even readable by the app role: sees nothing either way
            assert row == {"n": 0}, f"{name} shows rows with no tenant set"


async def test_a_tenant_scope_shows_only_that_tenant(
    db: Database, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    mine, theirs = await _site(db, tenant), await _site(db, other_tenant)
    async with db.tenant(tenant.id) as conn:
        # No WHERE clause on purpose: RLS is the backstop behind the app-level scoping.
        rows = await (await conn.execute("SELECT id::text AS id FROM sites")).fetchall()
        assert [r["id"] for r in rows] == [mine]
        changed = await conn.execute("UPDATE sites SET name = 'hijacked'")
        assert changed.rowcount == 1
        deleted = await conn.execute(
            "DELETE FROM memberships WHERE tenant_id = %s", [other_tenant.id]
        )
        assert deleted.rowcount == 0
    async with db.tenant(other_tenant.id) as conn:
        row = await (await conn.execute("SELECT id::text AS id, name FROM sites")).fetchone()
        assert row == {"id": theirs, "name": "Site"}
        members = await (await conn.execute("SELECT count(*) AS n FROM memberships")).fetchone()
        assert members == {"n": 3}


async def test_rows_cannot_be_written_into_another_tenant(
    db: Database, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    await _site(db, tenant)
    for statement in (
        "INSERT INTO sites (tenant_id, name) VALUES (%s, 'planted')",
        "UPDATE sites SET tenant_id = %s",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            async with db.tenant(tenant.id) as conn:
                await conn.execute(statement, [other_tenant.id])
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM sites WHERE tenant_id = %s", [other_tenant.id]
        )
        assert await cur.fetchone() == {"n": 0}


@pytest.fixture
async def one_connection(settings: Settings) -> AsyncIterator[Database]:
    """A Database whose app pool holds exactly one connection, so reuse is certain."""
    single = Database(settings.database_url, settings.owner_database_url, min_size=1, max_size=1)
    await single.open()
    yield single
    await single.close()


async def _one(conn: Connection, query: LiteralString) -> Any:
    row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return next(iter(row.values()))


async def test_pooled_connection_never_carries_a_tenant(
    one_connection: Database, tenant: TenantFixture
) -> None:
    db = one_connection
    await _site(db, tenant)
    async with db.tenant(tenant.id) as conn:
        backend = await _one(conn, "SELECT pg_backend_pid()")
        assert await _one(conn, "SELECT count(*) FROM sites") == 1
    with pytest.raises(RuntimeError):
        async with db.tenant(tenant.id):
            raise RuntimeError("a request failing half-way")
    async with db.unscoped() as conn:
        assert await _one(conn, "SELECT pg_backend_pid()") == backend, "not the same connection"
        assert await _one(conn, "SELECT current_setting('app.tenant_id', true)") in {None, ""}
        assert await _one(conn, "SELECT count(*) FROM sites") == 0
