"""Connection pools and the three ways to get a connection.

Requests use the app role (no BYPASSRLS), so row-level security is the backstop behind the
app-level scoping: ``tenant()`` sets ``app.tenant_id`` transaction-locally, hence a pooled
connection never carries a tenant into its next transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NewType

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from app.core.settings import Settings
from app.core.tenancy import TenantId

Connection = AsyncConnection[DictRow]
# A connection inside one transaction scoped to one tenant; only ``Database.tenant`` makes one.
TenantConnection = NewType("TenantConnection", Connection)

_BEGIN_TENANT = sql.SQL("BEGIN; SELECT set_config('app.tenant_id', {}, true)")
_MEMBER_ROLE = sql.SQL("; SELECT role FROM memberships WHERE tenant_id = {} AND user_id = {}")


def _pool(
    conninfo: str, min_size: int, max_size: int, name: str
) -> AsyncConnectionPool[Connection]:
    return AsyncConnectionPool(
        conninfo,
        connection_class=Connection,
        kwargs={"autocommit": True, "row_factory": dict_row},
        min_size=min_size,
        max_size=max_size,
        open=False,
        name=name,
    )


class Database:
    """The app-role pool for requests and the owner-role pool for privileged jobs."""

    def __init__(
        self, app_url: str, owner_url: str, *, min_size: int = 2, max_size: int = 16
    ) -> None:
        self._app = _pool(app_url, min_size, max_size, "app")
        self._owner = _pool(owner_url, 1, 2, "owner")

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.database_url,
            settings.owner_database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
        )

    async def open(self, timeout: float = 30.0) -> None:
        """Connect both pools; fails after ``timeout`` seconds if the database is unreachable."""
        await self._app.open(wait=True, timeout=timeout)
        await self._owner.open(wait=True, timeout=timeout)

    async def close(self) -> None:
        await self._app.close()
        await self._owner.close()

    @asynccontextmanager
    async def tenant(self, tenant_id: TenantId) -> AsyncIterator[TenantConnection]:
        """One transaction on the app pool in which RLS shows only ``tenant_id``'s rows."""
        async with self._scoped(tenant_id, None) as (conn, _):
            yield conn

    @asynccontextmanager
    async def tenant_member(
        self, tenant_id: TenantId, user_id: uuid.UUID
    ) -> AsyncIterator[tuple[TenantConnection, str | None]]:
        """``tenant()`` plus the user's current role there (None: not a member), read in the
        same round trip: what every authenticated request needs first."""
        async with self._scoped(tenant_id, user_id) as scoped:
            yield scoped

    @asynccontextmanager
    async def _scoped(
        self, tenant_id: TenantId, user_id: uuid.UUID | None
    ) -> AsyncIterator[tuple[TenantConnection, str | None]]:
        # BEGIN, the tenant setting and the membership go as one simple query (one round trip);
        # the values are typed UUIDs quoted by psycopg, never text from the request.
        query = _BEGIN_TENANT.format(sql.Literal(str(tenant_id)))
        if user_id is not None:
            query += _MEMBER_ROLE.format(sql.Literal(str(tenant_id)), sql.Literal(str(user_id)))
        async with self._app.connection() as conn:
            cur = await conn.execute(query)
            role = None
            if user_id is not None:
                cur.nextset()
                cur.nextset()
                row = await cur.fetchone()
                role = None if row is None else str(row["role"])
            try:
                yield TenantConnection(conn), role
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    @asynccontextmanager
    async def unscoped(self) -> AsyncIterator[Connection]:
        """One app-role transaction with no tenant: tenant tables show nothing here."""
        async with self._app.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def owner(self) -> AsyncIterator[Connection]:
        """One owner-role transaction (bypasses RLS): migrations, purges, privileged jobs."""
        async with self._owner.connection() as conn, conn.transaction():
            yield conn
