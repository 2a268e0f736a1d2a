"""Conversation retention per tenant (default 12 months), enforced by the daily privacy job:
expired conversations go with their messages; recent ones and other tenants' stay."""

from __future__ import annotations

import httpx
import pytest

from app.core.db import Database
from app.knowledge.storage import ObjectStore
from app.privacy.purge import Janitor, Pace, run
from tests.app.conftest import AuthHeaders, TenantFixture
from tests.app.privacy_fixtures import other, s3_settings, seeded, store

__all__ = ["other", "s3_settings", "seeded", "store"]  # fixtures
pytestmark = pytest.mark.anyio
SETTINGS = "/api/v1/privacy/settings"


async def age_conversations(db: Database, tenant: TenantFixture, months: int) -> None:
    async with db.owner() as conn:
        await conn.execute(
            "UPDATE chat_sessions SET last_message_at = now() - make_interval(months => %s)"
            " WHERE tenant_id = %s",
            [months, tenant.id],
        )


async def counts(db: Database, tenant: TenantFixture) -> tuple[int, int, int]:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM chat_sessions WHERE tenant_id = %(t)s) AS s,"
            " (SELECT count(*) FROM chat_messages WHERE tenant_id = %(t)s) AS m,"
            " (SELECT count(*) FROM leads WHERE tenant_id = %(t)s) AS l",
            {"t": tenant.id},
        )
        row = await cur.fetchone()
        assert row is not None
        return row["s"], row["m"], row["l"]


@pytest.mark.claim("GDPR-16")
async def test_retention_setting_defaults_to_12_months_and_only_admins_change_it(
    client: httpx.AsyncClient,
    auth_headers: AuthHeaders,
    tenant: TenantFixture,
) -> None:
    member = auth_headers(tenant.member, tenant)
    admin = auth_headers(tenant.admin, tenant)
    assert (await client.get(SETTINGS, headers=member)).json() == {
        "conversation_retention_months": 12
    }
    assert (
        await client.put(SETTINGS, headers=member, json={"conversation_retention_months": 3})
    ).status_code == 403
    for bad in (0, 121, "x"):
        response = await client.put(
            SETTINGS, headers=admin, json={"conversation_retention_months": bad}
        )
        assert response.status_code == 422
    ok = await client.put(SETTINGS, headers=admin, json={"conversation_retention_months": 3})
    assert ok.json() == {"conversation_retention_months": 3}
    assert (await client.get(SETTINGS, headers=member)).json() == ok.json()


@pytest.mark.usefixtures("seeded", "other")  # the seed sets retention to 6 months
async def test_job_deletes_conversations_past_each_tenants_retention(
    db: Database,
    tenant: TenantFixture,
    other_tenant: TenantFixture,
    store: ObjectStore,
) -> None:
    async with db.owner() as conn:
        await conn.execute("DELETE FROM privacy_settings WHERE tenant_id = %s", [other_tenant.id])
    await age_conversations(db, tenant, months=7)
    await age_conversations(db, other_tenant, months=7)  # within the default 12 months
    before_other = await counts(db, other_tenant)

    results = await run(Janitor(db, store, Pace(batch_size=1)), ["retention"])
    assert results == {"conversations_expired": 2}
    assert await counts(db, tenant) == (0, 0, 1)  # the lead (given with consent) stays
    assert await counts(db, other_tenant) == before_other

    await age_conversations(db, other_tenant, months=13)
    await run(Janitor(db, store, Pace()), ["retention"])
    assert await counts(db, other_tenant) == (0, 0, 1)
