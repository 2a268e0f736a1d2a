"""Export and erasure are driven by the live schema, so a table cannot be forgotten: every
table holding tenant, visitor or account data is exported and purged, including a table
that a later migration adds (simulated here by creating one)."""

from __future__ import annotations

import httpx
import pytest

from app.core.db import Database
from app.knowledge.storage import ObjectStore
from app.privacy.catalog import Catalog, Subject, SubjectKind, load_catalog
from app.privacy.purge import Janitor, Pace, run
from tests.app.conftest import AuthHeaders
from tests.app.privacy_fixtures import Seeded, rows_mentioning, s3_settings, seeded, store

__all__ = ["s3_settings", "seeded", "store"]  # fixtures
pytestmark = pytest.mark.anyio


async def catalog_of(db: Database) -> Catalog:
    async with db.owner() as conn:
        return await load_catalog(conn)


def covered(catalog: Catalog, subject: Subject) -> tuple[set[str], set[str]]:
    """(tables the erasure deletes from or rewrites, tables the export contains)."""
    plan = catalog.plan(subject)
    return set(plan.deletions) | {u.table for u in plan.updates}, set(plan.selections())


@pytest.mark.claim("GDPR-15", "GDPR-17", "GDPR-20")
async def test_every_table_with_subject_data_is_exported_and_purged(db: Database) -> None:
    catalog = await catalog_of(db)
    cases = {
        "tenant": (Subject(SubjectKind.TENANT, ("t",)), catalog.tenant_tables()),
        "visitor": (Subject(SubjectKind.VISITOR, ("v",), tenant_id="t"), catalog.visitor_tables()),
        "account": (Subject(SubjectKind.ACCOUNT, ("u",), email="e"), catalog.account_tables()),
    }
    # The conventions find what the migrations of every part hold today.
    assert {
        "chat_sessions",
        "chat_messages",
        "leads",
        "kb_chunks",
        "audit_events",
        "data_subject_requests",
    } <= catalog.tenant_tables()
    assert {"chat_sessions", "chat_messages", "leads", "processing_restrictions"} <= (
        catalog.visitor_tables()
    )
    assert {"memberships", "refresh_tokens", "identities", "invitations"} <= (
        catalog.account_tables()
    )
    for kind, (subject, holding) in cases.items():
        purged, exported = covered(catalog, subject)
        assert holding - purged == set(), f"{kind} data never purged from {holding - purged}"
        assert holding - exported == set(), f"{kind} data never exported from {holding - exported}"


@pytest.mark.claim("GDPR-15", "GDPR-17")
async def test_a_table_added_later_is_exported_and_purged_without_code_changes(
    client: httpx.AsyncClient,
    db: Database,
    auth_headers: AuthHeaders,
    seeded: Seeded,
    store: ObjectStore,
) -> None:
    tenant = seeded.tenant
    visitor = seeded.visitors[0]
    async with db.owner() as conn:  # a later migration: notes per visitor, tags per note
        await conn.execute(
            "CREATE TABLE visitor_notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " tenant_id uuid NOT NULL REFERENCES tenants (id), visitor_id text NOT NULL,"
            " note text NOT NULL);"
            " CREATE TABLE visitor_note_tags (tag text NOT NULL,"
            " note_id bigint NOT NULL REFERENCES visitor_notes (id));"
            " SELECT enable_tenant_rls('visitor_notes')"
        )
        for v in seeded.visitors:
            cur = await conn.execute(
                "INSERT INTO visitor_notes (tenant_id, visitor_id, note) VALUES (%s, %s, %s)"
                " RETURNING id",
                [tenant.id, v, f"note about {v}"],
            )
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO visitor_note_tags (note_id, tag) VALUES (%s, %s)",
                [row["id"], f"tag-{v}"],
            )
    owner = auth_headers(tenant.owner, tenant)
    export = await client.get(
        "/api/v1/privacy/export/visitor", headers=owner, params={"visitor_id": visitor}
    )
    tables = {t["name"]: t["rows"] for t in export.json()["tables"]}
    assert [r["note"] for r in tables["visitor_notes"]] == [f"note about {visitor}"]
    assert [r["tag"] for r in tables["visitor_note_tags"]] == [f"tag-{visitor}"]

    erased = await client.post(
        "/api/v1/privacy/erasure/visitor", headers=owner, json={"visitor_id": visitor}
    )
    removed = erased.json()["rows_removed"]
    assert (removed["visitor_notes"], removed["visitor_note_tags"]) == (1, 1)
    assert await rows_mentioning(db, f"tag-{visitor}") == {}
    assert await rows_mentioning(db, f"tag-{seeded.visitors[1]}") == {"visitor_note_tags": 1}

    await client.post(
        "/api/v1/privacy/erasure/tenant", headers=owner, json={"confirm_tenant_id": str(tenant.id)}
    )
    await run(Janitor(db, store, Pace(batch_size=10)), ["purge"])
    assert await rows_mentioning(db, str(tenant.id)) == {}
    assert await rows_mentioning(db, f"tag-{seeded.visitors[1]}") == {}
