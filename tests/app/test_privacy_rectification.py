"""GDPR-16: a user corrects their profile and an admin the tenant's settings; each change
takes effect at once and is audited (who, when; before/after where it is not personal)."""

from __future__ import annotations

import httpx
import pytest

from tests.app.conftest import AuthHeaders, TenantFixture

pytestmark = pytest.mark.anyio


async def events(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, object]]:
    response = await client.get("/api/v1/audit/events", headers=headers)
    assert response.status_code == 200, response.text
    body: list[dict[str, object]] = response.json()
    return body


@pytest.mark.claim("GDPR-16")
async def test_profile_rectification_is_applied_and_audited(
    client: httpx.AsyncClient,
    auth_headers: AuthHeaders,
    tenant: TenantFixture,
) -> None:
    member = auth_headers(tenant.member, tenant)
    response = await client.patch(
        "/api/v1/users/me", headers=member, json={"display_name": "Corrected Name"}
    )
    assert response.status_code == 200, response.text
    assert (await client.get("/api/v1/users/me", headers=member)).json()["display_name"] == (
        "Corrected Name"
    )
    [event] = [
        e
        for e in await events(client, auth_headers(tenant.admin, tenant))
        if e["event"] == "profile.updated"
    ]
    assert event["actor"] == str(tenant.member.id)
    assert event["detail"] == {"changed": ["display_name"]}
    assert "Corrected Name" not in str(event)  # the audit trail keeps no personal values
    bad = await client.patch("/api/v1/users/me", headers=member, json={"email": "x@y.z"})
    assert bad.status_code == 422


@pytest.mark.claim("GDPR-16")
async def test_tenant_settings_rectification_is_audited_with_before_and_after(
    client: httpx.AsyncClient,
    auth_headers: AuthHeaders,
    tenant: TenantFixture,
) -> None:
    admin = auth_headers(tenant.admin, tenant)
    response = await client.patch("/api/v1/tenant", headers=admin, json={"name": "Acme Oy"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Acme Oy"
    [event] = [e for e in await events(client, admin) if e["event"] == "tenant.renamed"]
    assert event["actor"] == str(tenant.admin.id)
    assert event["detail"] == {"before": {"name": tenant.name}, "after": {"name": "Acme Oy"}}
    member = await client.patch(
        "/api/v1/tenant", headers=auth_headers(tenant.member, tenant), json={"name": "Nope"}
    )
    assert member.status_code == 403
