"""Roles Owner / Admin / Member (AUTHZ-2) and plan features enforced at the API (AUTHZ-3)."""

from __future__ import annotations

import httpx
import pytest

from app.core.deps import require_feature, require_permission
from app.core.plans import PLAN_FEATURES, Feature, Plan
from app.core.roles import PERMISSIONS, Permission, Role
from app.core.settings import Settings
from tests.app.conftest import AuthHeaders, MakeTenant, TenantFixture
from tests.app.helpers import database_env, run_module

pytestmark = pytest.mark.anyio


@pytest.mark.claim("AUTHZ-2")
def test_roles_are_nested_and_distinct() -> None:
    assert PERMISSIONS[Role.MEMBER] < PERMISSIONS[Role.ADMIN] < PERMISSIONS[Role.OWNER]
    assert set(PERMISSIONS[Role.OWNER]) == set(Permission)
    assert Permission.MEMBERS_MANAGE not in PERMISSIONS[Role.MEMBER]
    assert Permission.OWNERS_MANAGE not in PERMISSIONS[Role.ADMIN]


def test_unknown_permission_or_feature_fails_at_definition() -> None:
    with pytest.raises(ValueError, match="sites:wirte"):
        require_permission("sites:wirte")
    with pytest.raises(ValueError, match="sso2"):
        require_feature("sso2")


@pytest.mark.claim("AUTHZ-2")
async def test_only_owners_grant_or_remove_the_owner_role(
    client: httpx.AsyncClient, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    admin, owner = auth_headers(tenant.admin, tenant), auth_headers(tenant.owner, tenant)
    members = "/api/v1/tenant/members"
    as_owner = {"role": "owner"}
    refused = [
        await client.put(f"{members}/{tenant.member.id}/role", json=as_owner, headers=admin),
        await client.put(
            f"{members}/{tenant.owner.id}/role", json={"role": "member"}, headers=admin
        ),
        await client.delete(f"{members}/{tenant.owner.id}", headers=admin),
        await client.post(
            "/api/v1/tenant/invitations", json={"email": "o@x.test", "role": "owner"}, headers=admin
        ),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "Only an Owner" in response.json()["detail"]
    # The last Owner cannot leave the tenant without one.
    last = await client.put(
        f"{members}/{tenant.owner.id}/role", json={"role": "admin"}, headers=owner
    )
    assert last.status_code == 409
    promoted = await client.put(f"{members}/{tenant.admin.id}/role", json=as_owner, headers=owner)
    assert promoted.status_code == 200
    listing = await client.get(members, headers=owner)
    assert sorted(m["role"] for m in listing.json()) == ["member", "owner", "owner"]


@pytest.mark.claim("AUTHZ-2")
async def test_an_invitation_makes_a_member_of_the_right_person_once(
    client: httpx.AsyncClient,
    tenant: TenantFixture,
    other_tenant: TenantFixture,
    auth_headers: AuthHeaders,
) -> None:
    invited = other_tenant.member  # a user with an account elsewhere
    created = await client.post(
        "/api/v1/tenant/invitations",
        json={"email": invited.email.upper(), "role": "admin"},
        headers=auth_headers(tenant.admin, tenant),
    )
    assert created.status_code == 201
    token = created.json()["token"]
    wrong_person = auth_headers(other_tenant.admin, other_tenant)
    accept = "/api/v1/invitations/accept"
    assert (
        await client.post(accept, json={"token": token}, headers=wrong_person)
    ).status_code == 404
    joined = await client.post(
        accept, json={"token": token}, headers=auth_headers(invited, other_tenant)
    )
    assert joined.status_code == 200, joined.text
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {joined.json()['access_token']}"}
    )
    assert me.json()["tenant_id"] == str(tenant.id)
    assert me.json()["role"] == "admin"
    assert {m["tenant_id"] for m in me.json()["memberships"]} == {
        str(tenant.id),
        str(other_tenant.id),
    }
    again = await client.post(
        accept, json={"token": token}, headers=auth_headers(invited, other_tenant)
    )
    assert again.status_code == 404


@pytest.mark.claim("AUTHZ-3")
def test_higher_plans_include_the_lower() -> None:
    assert PLAN_FEATURES[Plan.FREE] <= PLAN_FEATURES[Plan.PRO] < PLAN_FEATURES[Plan.TEAM]
    assert Feature.SSO in PLAN_FEATURES[Plan.TEAM]
    assert Feature.SSO not in PLAN_FEATURES[Plan.PRO]


@pytest.mark.claim("AUTHZ-3")
async def test_gated_calls_on_a_lower_plan_are_refused_with_a_clear_error(
    client: httpx.AsyncClient, make_tenant: MakeTenant, auth_headers: AuthHeaders
) -> None:
    free, pro = await make_tenant(plan="free"), await make_tenant(plan="pro")
    refused = await client.get("/api/v1/audit/events", headers=auth_headers(free.owner, free))
    assert refused.status_code == 402
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["title"] == "Plan upgrade required"
    assert problem["detail"] == (
        "'audit_log' needs the Pro plan or higher; this tenant is on the Free plan."
    )
    assert (problem["feature"], problem["plan"], problem["required_plan"]) == (
        "audit_log",
        "free",
        "pro",
    )
    allowed = await client.get("/api/v1/audit/events", headers=auth_headers(pro.owner, pro))
    assert allowed.status_code == 200


@pytest.mark.claim("AUTHZ-3")
async def test_site_limit_follows_the_plan(
    client: httpx.AsyncClient, make_tenant: MakeTenant, auth_headers: AuthHeaders
) -> None:
    free = await make_tenant(plan="free")
    headers = auth_headers(free.owner, free)
    assert (
        await client.post("/api/v1/sites", json={"name": "One"}, headers=headers)
    ).status_code == 201
    second = await client.post("/api/v1/sites", json={"name": "Two"}, headers=headers)
    assert second.status_code == 402
    assert "The Free plan includes 1 site(s)" in second.json()["detail"]
    listing = await client.get("/api/v1/sites", headers=headers)
    assert [s["name"] for s in listing.json()] == ["One"]


@pytest.mark.claim("AUTHZ-3")
async def test_plans_change_only_through_the_operator_command(
    client: httpx.AsyncClient,
    make_tenant: MakeTenant,
    auth_headers: AuthHeaders,
    settings: Settings,
) -> None:
    free = await make_tenant(plan="free")
    headers = auth_headers(free.owner, free)
    # A tenant cannot upgrade itself through its own API.
    sneaky = await client.patch("/api/v1/tenant", json={"plan": "team"}, headers=headers)
    assert sneaky.status_code == 422
    env = database_env(settings)
    done = run_module("app.jobs", "set-plan", str(free.id), "pro", env=env)
    assert done.returncode == 0, done.stderr
    tenant = await client.get("/api/v1/tenant", headers=headers)
    assert tenant.json()["plan"] == "pro"
    assert "audit_log" in tenant.json()["features"]
    refused = run_module("app.jobs", "set-plan", str(free.id), "gold", env=env)
    assert refused.returncode == 2
    assert "invalid choice: 'gold'" in refused.stderr
