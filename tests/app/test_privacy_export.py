"""GDPR-15 / GDPR-20: export of an account, a tenant or a visitor — JSON following the
documented schema, CSV per table, every table holding the subject's data, streamed."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from typing import Any

import httpx
import jsonschema
import pytest

from app.core.db import Database
from app.privacy.catalog import load_catalog
from app.privacy.service import EXPORT_SCHEMA, export_json, tenant_subject
from tests.app.conftest import AuthHeaders, TenantFixture
from tests.app.privacy_fixtures import Seeded, other, s3_settings, seeded, store

__all__ = ["other", "s3_settings", "seeded", "store"]  # fixtures
pytestmark = pytest.mark.anyio
EXPORT = "/api/v1/privacy/export"
SCHEMA = json.loads(EXPORT_SCHEMA.read_text())


def tables_of(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    jsonschema.validate(document, SCHEMA)
    for table in document["tables"]:
        assert table["row_count"] == len(table["rows"])
        for row in table["rows"]:
            assert set(row) == set(table["columns"])  # omitted columns really are left out
    return {t["name"]: t["rows"] for t in document["tables"]}


@pytest.mark.claim("GDPR-15", "GDPR-20")
async def test_tenant_export_holds_every_tenant_table_in_the_documented_schema(
    client: httpx.AsyncClient,
    db: Database,
    auth_headers: AuthHeaders,
    seeded: Seeded,
    other: Seeded,
) -> None:
    tenant = seeded.tenant
    response = await client.get(f"{EXPORT}/tenant", headers=auth_headers(tenant.admin, tenant))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "attachment" in response.headers["content-disposition"]
    tables = tables_of(response.json())
    async with db.owner() as conn:
        catalog = await load_catalog(conn)
    # Catalog-driven: every table with a tenant_id column (and the tenant row) is exported.
    assert catalog.tenant_tables() <= set(tables)
    assert tables["tenants"] == [
        {
            "id": str(tenant.id),
            "name": tenant.name,
            "plan": "team",
            "created_at": tables["tenants"][0]["created_at"],
        }
    ]
    assert {r["visitor_id"] for r in tables["chat_sessions"]} == set(seeded.visitors)
    assert [r["email"] for r in tables["leads"]] == [seeded.lead_email]
    assert len(tables["kb_chunks"]) == 1
    assert "embedding" not in tables["kb_chunks"][0]
    assert "token_hash" not in tables["refresh_tokens"][0]
    assert str(other.tenant.id) not in response.text
    assert other.lead_email not in response.text
    member = await client.get(f"{EXPORT}/tenant", headers=auth_headers(tenant.member, tenant))
    assert member.status_code == 403


@pytest.mark.claim("GDPR-15", "GDPR-20")
async def test_visitor_export_by_email_or_id_has_only_that_visitor(
    client: httpx.AsyncClient,
    db: Database,
    auth_headers: AuthHeaders,
    seeded: Seeded,
) -> None:
    tenant = seeded.tenant
    headers = auth_headers(tenant.admin, tenant)
    with_lead, without = seeded.visitors
    by_email = await client.get(
        f"{EXPORT}/visitor", headers=headers, params={"email": seeded.lead_email.upper()}
    )
    assert by_email.status_code == 200, by_email.text
    tables = tables_of(by_email.json())
    async with db.owner() as conn:
        catalog = await load_catalog(conn)
    assert catalog.visitor_tables() <= set(tables)
    assert by_email.json()["subject"] == {"kind": "visitor", "ids": [with_lead]}
    assert [r["email"] for r in tables["leads"]] == [seeded.lead_email]
    assert len(tables["chat_messages"]) == 2
    assert without not in by_email.text

    by_id = await client.get(f"{EXPORT}/visitor", headers=headers, params={"visitor_id": without})
    tables = tables_of(by_id.json())
    assert tables["leads"] == []
    assert [r["kind"] for r in tables["processing_restrictions"]] == ["objection"]
    assert with_lead not in by_id.text

    as_csv = await client.get(
        f"{EXPORT}/visitor",
        headers=headers,
        params={"visitor_id": without, "format": "csv", "table": "chat_messages"},
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["content"] for r in rows] == ["message 0", "message 1"]
    assert {r["visitor_id"] for r in rows} == {without}
    wrong_table = await client.get(
        f"{EXPORT}/visitor",
        headers=headers,
        params={"visitor_id": without, "format": "csv", "table": "users"},
    )
    assert wrong_table.status_code == 422
    assert "chat_messages" in wrong_table.json()["tables"]


@pytest.mark.claim("GDPR-15", "GDPR-20")
async def test_account_export_has_the_person_their_memberships_and_audit_entries(
    client: httpx.AsyncClient,
    auth_headers: AuthHeaders,
    seeded: Seeded,
) -> None:
    tenant = seeded.tenant
    response = await client.get(f"{EXPORT}/account", headers=auth_headers(tenant.owner, tenant))
    assert response.status_code == 200, response.text
    tables = tables_of(response.json())
    assert [u["email"] for u in tables["users"]] == [tenant.owner.email]
    assert [m["role"] for m in tables["memberships"]] == ["owner"]
    assert [e["event"] for e in tables["audit_events"]] == ["sign_in"]
    assert len(tables["refresh_tokens"]) == 1
    assert tenant.admin.email not in response.text
    as_csv = await client.get(
        f"{EXPORT}/account",
        headers=auth_headers(tenant.owner, tenant),
        params={"format": "csv", "table": "users"},
    )
    assert [r["email"] for r in csv.DictReader(io.StringIO(as_csv.text))] == [tenant.owner.email]
    schema = await client.get(
        "/api/v1/privacy/export-schema", headers=auth_headers(tenant.member, tenant)
    )
    assert schema.json() == SCHEMA


@pytest.mark.claim("GDPR-15", "GDPR-DSR")
async def test_export_for_another_tenants_visitor_is_refused_and_records_nothing(
    client: httpx.AsyncClient,
    auth_headers: AuthHeaders,
    seeded: Seeded,
    other: Seeded,
) -> None:
    tenant = seeded.tenant
    headers = auth_headers(tenant.admin, tenant)
    for params in ({"email": other.lead_email}, {"visitor_id": other.visitors[0]}):
        response = await client.get(f"{EXPORT}/visitor", headers=headers, params=params)
        assert response.status_code == 404
        assert other.lead_email not in response.text
    requests = await client.get("/api/v1/privacy/requests", headers=headers)
    assert requests.json() == []
    # An export that is given is recorded as an answered access request.
    await client.get(f"{EXPORT}/visitor", headers=headers, params={"email": seeded.lead_email})
    [recorded] = (await client.get("/api/v1/privacy/requests", headers=headers)).json()
    assert (recorded["right_invoked"], recorded["status"]) == ("access", "completed")
    other_headers = auth_headers(other.tenant.admin, other.tenant)
    assert (await client.get("/api/v1/privacy/requests", headers=other_headers)).json() == []


@pytest.mark.claim("GDPR-15")
async def test_a_large_tenant_exports_in_bounded_memory(db: Database, seeded: Seeded) -> None:
    """Peak Python memory while streaming stays flat when the export grows tenfold."""
    small = await _peak_while_exporting(db, seeded.tenant, extra_messages=2_000)
    large = await _peak_while_exporting(db, seeded.tenant, extra_messages=20_000)
    print(f"export small: {small}, large: {large}")
    assert large[0] > 8 * small[0]  # ten times the data ...
    assert large[1] < 2 * small[1] + 1_000_000  # ... not ten times the memory
    assert large[1] < large[0] / 4


async def _peak_while_exporting(
    db: Database, tenant: TenantFixture, extra_messages: int
) -> tuple[int, int]:
    async with db.owner() as conn:
        await conn.execute(
            "INSERT INTO chat_messages (tenant_id, session_id, visitor_id, role, content)"
            " SELECT tenant_id, id, visitor_id, 'user', repeat('lorem ipsum ', 20) || n"
            " FROM chat_sessions, generate_series(1, %s) AS n WHERE tenant_id = %s",
            [extra_messages // 2, tenant.id],
        )
    size = 0
    tracemalloc.start()
    try:
        async for chunk in export_json(db, tenant_subject(tenant.id)):
            size += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return size, peak
