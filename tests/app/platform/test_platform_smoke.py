from __future__ import annotations

import httpx
import pytest

from tests.app.conftest import AuthHeaders, TenantFixture

pytestmark = pytest.mark.anyio


async def test_tenant_read(
    client: httpx.AsyncClient, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    response = await client.get("/api/v1/tenant", headers=auth_headers(tenant.member, tenant))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(tenant.id)
