"""Connection pools and the three ways to get a connection.

Requests use the app role (no BYPASSRLS), so row-level security is the backstop behind the
app-level scoping: ``tenant()`` sets ``app.tenant_id`` transaction-locally, hence a pooled
connection never carries a tenant into its next transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import NewType

import psycopg
from psycopg import AsyncConnection
from psycopg.abc import QueryNoTemplate as Query
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from app.core.settings import Settings
from app.core.tenancy import TenantId

Connection = AsyncConnection[DictRow]
# A connection inside one transaction scoped to one tenant; only ``Database.tenant`` makes one.
TenantConnection = NewType("TenantConnection", Connection)

_SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"


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
        async with self._scoped(tenant_id, None, {}) as (conn, _):
            yield conn

    @asynccontextmanager
    async def tenant_checked(
        self, tenant_id: TenantId, check: Query, params: Mapping[str, object]
    ) -> AsyncIterator[tuple[TenantConnection, DictRow | None]]:
        """``tenant()`` plus the first row of ``check``, run inside it in the same round trip:
        for the checks every authenticated request starts with (membership, erasure)."""
        async with self._scoped(tenant_id, check, params) as scoped:
            yield scoped

    @asynccontextmanager
    async def _scoped(
        self, tenant_id: TenantId, check: Query | None, params: Mapping[str, object]
    ) -> AsyncIterator[tuple[TenantConnection, DictRow | None]]:
        async with self._app.connection() as conn:
            try:
                row = await _begin(conn, tenant_id, check, params)
                yield TenantConnection(conn), row
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    await conn.rollback()
                raise
            await conn.commit()

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


async def _begin(
    conn: Connection, tenant_id: TenantId, check: Query | None, params: Mapping[str, object]
) -> DictRow | None:
    """BEGIN, the transaction-local tenant setting and ``check`` as one pipeline: one round
    trip, and prepared statements (psycopg prepares repeated queries) instead of SQL text."""
    async with conn.pipeline():
        await conn.execute("BEGIN")
        await conn.execute(_SET_TENANT, [str(tenant_id)])
        cur = None if check is None else await conn.execute(check, params)
    return None if cur is None else await cur.fetchone()
