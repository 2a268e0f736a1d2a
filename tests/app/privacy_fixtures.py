"""Test data for the privacy tests: a tenant with rows in every kind of table (knowledge with
vectors and an uploaded object, conversations, a lead, tokens, audit), an S3 stand-in
(moto, real S3 wire protocol through boto3), and a scan for rows that mention a value."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

import pytest
from psycopg import sql

from app.core.db import Connection, Database
from app.knowledge.storage import ObjectStore, StorageSettings, upload_key
from app.privacy.catalog import load_catalog
from tests.app.conftest import TenantFixture
from tests.app.s3_fixtures import object_keys, s3_client, s3_settings

__all__ = ["object_keys", "s3_client", "s3_settings"]  # re-exported for the test modules


@dataclass
class Seeded:
    """What ``seed_tenant`` created, to look for afterwards."""

    tenant: TenantFixture
    site_id: uuid.UUID
    visitors: tuple[str, str]
    lead_email: str
    object_keys: list[str] = field(default_factory=list)


@pytest.fixture
def store(s3_settings: StorageSettings) -> ObjectStore:
    return ObjectStore(s3_settings)


@pytest.fixture
async def seeded(db: Database, tenant: TenantFixture, store: ObjectStore) -> Seeded:
    return await seed_tenant(db, tenant, store)


@pytest.fixture
async def other(db: Database, other_tenant: TenantFixture, store: ObjectStore) -> Seeded:
    """The same data in another tenant: what must stay untouched."""
    return await seed_tenant(db, other_tenant, store)


def s3_env(settings: StorageSettings) -> dict[str, str]:
    """The variables that point a subprocess at the same S3 stand-in."""
    return {
        "CLOOP_S3_ENDPOINT_URL": settings.endpoint_url,
        "CLOOP_S3_REGION": settings.region,
        "CLOOP_S3_BUCKET": settings.bucket,
        "CLOOP_S3_ACCESS_KEY": settings.access_key.get_secret_value(),
        "CLOOP_S3_SECRET_KEY": settings.secret_key.get_secret_value(),
    }


async def seed_tenant(
    db: Database, tenant: TenantFixture, store: ObjectStore, *, messages: int = 2
) -> Seeded:
    """Rows about the tenant in knowledge, chat, leads, widget, sign-in, audit and privacy
    tables, two visitors (the first left a lead), and one uploaded object in S3."""
    tag = uuid.uuid4().hex[:10]
    visitors = (f"visitor-a-{tag}", f"visitor-b-{tag}")
    lead_email = f"lead-{tag}@example.test"
    tid = tenant.id
    async with db.owner() as conn:
        site = await (
            await conn.execute(
                "INSERT INTO sites (tenant_id, name) VALUES (%s, 'Main') RETURNING id", [tid]
            )
        ).fetchone()
        assert site is not None
        site_id = site["id"]
        seeded = Seeded(tenant, site_id, visitors, lead_email)
        source = await (
            await conn.execute(
                "INSERT INTO kb_sources (tenant_id, site_id, kind, location)"
                " VALUES (%s, %s, 'upload', 'faq.txt') RETURNING id",
                [tid, site_id],
            )
        ).fetchone()
        assert source is not None
        document_id = uuid.uuid4()
        key = upload_key(tid, document_id)
        await store.put(key, b"Opening hours: 9-17.", "text/plain")
        seeded.object_keys.append(key)
        await conn.execute(
            "INSERT INTO kb_documents (id, tenant_id, site_id, source_id, url, title, content_hash,"
            " object_key, content_type, byte_size)"
            " VALUES (%s, %s, %s, %s, 'upload:faq.txt', 'FAQ', 'h', %s, 'text/plain', 20)",
            [document_id, tid, site_id, source["id"], key],
        )
        await conn.execute(
            "INSERT INTO kb_chunks (tenant_id, site_id, document_id, ord, content, tsv, embedding,"
            " embedding_model) VALUES (%s, %s, %s, 0, 'Opening hours: 9-17.',"
            " to_tsvector('english', 'Opening hours'), array_fill(0.1::real, ARRAY[384])::vector,"
            " 'all-MiniLM-L6-v2-onnx-int8')",
            [tid, site_id, document_id],
        )
        await conn.execute(
            "INSERT INTO kb_jobs (tenant_id, site_id, source_id, status)"
            " VALUES (%s, %s, %s, 'done')",
            [tid, site_id, source["id"]],
        )
        for visitor in visitors:
            await _conversation(conn, tid, site_id, visitor, messages)
        await conn.execute(
            "INSERT INTO leads (tenant_id, site_id, visitor_id, email, name, consent_text)"
            " VALUES (%s, %s, %s, %s, 'Lea Lead', 'You may contact me.')",
            [tid, site_id, visitors[0], lead_email],
        )
        await conn.execute(
            "INSERT INTO ai_usage (tenant_id, day, calls) VALUES (%s, current_date, 3)", [tid]
        )
        await conn.execute(
            "INSERT INTO widget_tokens (tenant_id, site_id, token_hash, token_prefix)"
            " VALUES (%s, %s, %s, 'wt_')",
            [tid, site_id, secrets.token_bytes(32)],
        )
        await conn.execute(
            "INSERT INTO refresh_tokens (tenant_id, user_id, family_id, token_hash, expires_at)"
            " VALUES (%s, %s, gen_random_uuid(), %s, now() + interval '1 day')",
            [tid, tenant.owner.id, secrets.token_bytes(32)],
        )
        await conn.execute(
            "INSERT INTO invitations (tenant_id, email, role, token_hash, invited_by, expires_at)"
            " VALUES (%s, %s, 'member', %s, %s, now() + interval '7 days')",
            [tid, f"invitee-{tag}@example.test", secrets.token_bytes(32), tenant.owner.id],
        )
        await conn.execute(
            "INSERT INTO site_changes (tenant_id, site_id, actor, before, after)"
            " VALUES (%s, %s, %s, '{}', '{\"name\": \"Main\"}')",
            [tid, site_id, str(tenant.owner.id)],
        )
        await conn.execute(
            "INSERT INTO audit_events (tenant_id, event, actor, ip, outcome)"
            " VALUES (%s, 'sign_in', %s, '203.0.113.7', 'success')",
            [tid, str(tenant.owner.id)],
        )
        await conn.execute(
            "INSERT INTO saml_assertion_ids (tenant_id, assertion_id, expires_at)"
            " VALUES (%s, %s, now() + interval '5 minutes')",
            [tid, f"_a{tag}"],
        )
        await conn.execute(
            "INSERT INTO processing_restrictions (tenant_id, visitor_id, kind)"
            " VALUES (%s, %s, 'objection')",
            [tid, visitors[1]],
        )
        await conn.execute(
            "INSERT INTO privacy_settings (tenant_id, conversation_retention_months)"
            " VALUES (%s, 6)",
            [tid],
        )
    return seeded


async def _conversation(
    conn: Connection, tid: uuid.UUID, site_id: uuid.UUID, visitor: str, messages: int
) -> None:
    session = await (
        await conn.execute(
            "INSERT INTO chat_sessions (tenant_id, site_id, visitor_id) VALUES (%s, %s, %s)"
            " RETURNING id",
            [tid, site_id, visitor],
        )
    ).fetchone()
    assert session is not None
    await conn.execute(
        "INSERT INTO chat_messages (tenant_id, session_id, visitor_id, role, content)"
        " SELECT %s, %s, %s, CASE WHEN mod(n, 2) = 0 THEN 'user' ELSE 'assistant' END,"
        " 'message ' || n FROM generate_series(0, %s - 1) AS n",
        [tid, session["id"], visitor, messages],
    )


async def rows_mentioning(db: Database, needle: str) -> dict[str, int]:
    """Per table, how many rows contain ``needle`` anywhere in their text form (any column,
    JSON and arrays included): the catalog-independent check that nothing is left."""
    found: dict[str, int] = {}
    async with db.owner() as conn:
        catalog = await load_catalog(conn)
        for table in sorted(catalog.tables):
            query = sql.SQL(
                "SELECT count(*) AS n FROM {} AS r WHERE strpos(lower(r::text), lower(%s)) > 0"
            ).format(sql.Identifier(table))
            row = await (await conn.execute(query, [needle])).fetchone()
            if row and row["n"]:
                found[table] = int(row["n"])
    return found


async def _request(db: Database, tenant: TenantFixture) -> str:
    """A data-subject request of the tenant (the permission matrix's ``request_id``)."""
    async with db.tenant(tenant.id) as conn:
        cur = await conn.execute(
            "INSERT INTO data_subject_requests (tenant_id, subject_kind, subject_ref,"
            " right_invoked, due_at) VALUES (%s, 'visitor', 'v-matrix', 'access',"
            " now() + interval '30 days') RETURNING id",
            [tenant.id],
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row["id"])


# Resource factories of the privacy routes for the permission matrix.
PRIVACY_FACTORIES = {"request_id": _request}
