"""Resource factories of the knowledge/chat/widget routes for the permission matrix: each
makes its resource on the tenant's newest site (the one the matrix's site factory made)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable

from app.core.db import Database
from tests.app.conftest import TenantFixture

Factory = Callable[[Database, TenantFixture], Awaitable[str]]


async def _newest_site(db: Database, tenant: TenantFixture) -> str:
    async with db.tenant(tenant.id) as conn:
        cur = await conn.execute(
            "SELECT id FROM sites WHERE tenant_id = %s ORDER BY created_at DESC LIMIT 1",
            [tenant.id],
        )
        row = await cur.fetchone()
    assert row is not None, "the site factory runs first"
    return str(row["id"])


async def _source(db: Database, tenant: TenantFixture) -> tuple[str, str]:
    site_id = await _newest_site(db, tenant)
    async with db.tenant(tenant.id) as conn:
        cur = await conn.execute(
            "INSERT INTO kb_sources (tenant_id, site_id, kind, location)"
            " VALUES (%s, %s, 'upload', 'faq.txt') RETURNING id",
            [tenant.id, site_id],
        )
        row = await cur.fetchone()
    assert row is not None
    return site_id, str(row["id"])


async def document(db: Database, tenant: TenantFixture) -> str:
    site_id, source_id = await _source(db, tenant)
    async with db.tenant(tenant.id) as conn:
        cur = await conn.execute(
            "INSERT INTO kb_documents (tenant_id, site_id, source_id, url, title, content_hash)"
            " VALUES (%s, %s, %s, 'upload:faq.txt', 'FAQ', 'h') RETURNING id",
            [tenant.id, site_id, source_id],
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row["id"])


async def job(db: Database, tenant: TenantFixture) -> str:
    site_id, source_id = await _source(db, tenant)
    async with db.tenant(tenant.id) as conn:
        cur = await conn.execute(
            "INSERT INTO kb_jobs (tenant_id, site_id, source_id, status)"
            " VALUES (%s, %s, %s, 'done') RETURNING id",
            [tenant.id, site_id, source_id],
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row["id"])


async def token(db: Database, tenant: TenantFixture) -> str:
    site_id = await _newest_site(db, tenant)
    digest = hashlib.sha256(secrets.token_bytes(16)).digest()
    async with db.tenant(tenant.id) as conn:
        cur = await conn.execute(
            "INSERT INTO widget_tokens (tenant_id, site_id, token_hash, token_prefix)"
            " VALUES (%s, %s, %s, 'cw_test') RETURNING id",
            [tenant.id, site_id, digest],
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row["id"])


KB_CHAT_FACTORIES: dict[str, Factory] = {
    "document_id": document,
    "job_id": job,
    "token_id": token,
}
