"""Per-tenant SSO on the Team plan: configuration (gated, audited) and sign-in through a
tenant's SAML 2.0 IdP or OIDC directory (Entra ID, Google Workspace), each via a stand-in.
"""

from __future__ import annotations

import httpx
import pytest

from app.core.plans import Plan
from app.standins.oidc import Account
from app.standins.saml import SamlFault
from app.tenants import service as tenants_service
from tests.app.conftest import CLIENT_IP, AuthHeaders, MakeTenant, TenantFixture
from tests.app.signin_fixtures import (  # noqa: F401 - fixtures
    Signin,
    audit_rows,
    oidc_standin_fixture,
    saml_standin_fixture,
    signin_fixture,
)

# Marked here, not only by tests/app/conftest.py: anyio re-creates late-marked items and
# would drop their parametrization.
pytestmark = pytest.mark.anyio
SSO = "/api/v1/tenant/sso"


async def configure_saml(signin: Signin, tenant: TenantFixture, headers: AuthHeaders) -> None:
    async with httpx.AsyncClient() as browser:
        metadata = (await browser.get(signin.saml.entity_id)).text
    response = await signin.client.put(
        SSO,
        json={"protocol": "saml", "metadata_xml": metadata},
        headers=headers(tenant.admin, tenant),
    )
    assert response.status_code == 200, response.text


async def saml_sign_in(signin: Signin, tenant: TenantFixture, email: str) -> httpx.Response:
    acs, fields = await signin.idp_form(await signin.sso_start(tenant.id), email)
    return await signin.post_acs(acs, fields)


async def me(signin: Signin, response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    assert "set-cookie" not in response.headers
    token = response.json()["access_token"]
    found = await signin.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert found.status_code == 200, found.text
    body: dict[str, str] = found.json()
    return body


@pytest.mark.claim("AUTH-2", "LOG-1")
async def test_saml_configuration_from_metadata_is_stored_and_audited(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    shown = await signin.client.get(SSO, headers=auth_headers(tenant.owner, tenant))

    assert shown.status_code == 200
    config = shown.json()
    assert config["protocol"] == "saml"
    assert config["saml_idp_entity_id"] == signin.saml.entity_id
    assert config["saml_idp_sso_url"] == signin.saml.sso_url
    assert config["sp_acs_url"] == f"{config['sp_entity_id']}/acs"
    assert str(tenant.id) in config["sp_entity_id"]
    [row] = await audit_rows(signin.db, "sso.change")
    assert row["tenant_id"] == tenant.id
    assert row["actor"] == str(tenant.admin.id)
    assert row["ip"] == CLIENT_IP
    assert row["outcome"] == "success"
    assert row["detail"]["before"] is None
    assert row["detail"]["after"]["saml_idp_entity_id"] == signin.saml.entity_id


@pytest.mark.claim("AUTH-2", "LOG-1")
async def test_oidc_configuration_never_shows_or_audits_the_secret(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    body = {
        "protocol": "oidc",
        "kind": "entra",
        "directory": signin.oidc.directory,
        "client_id": "cloop-app",
        "client_secret": "s3cret-value",
    }
    await configure_saml(signin, tenant, auth_headers)
    response = await signin.client.put(SSO, json=body, headers=auth_headers(tenant.admin, tenant))
    removed = await signin.client.delete(SSO, headers=auth_headers(tenant.admin, tenant))
    after = await signin.client.get(SSO, headers=auth_headers(tenant.admin, tenant))

    assert response.status_code == 200, response.text
    assert "s3cret-value" not in response.text
    assert response.json()["oidc_directory"] == signin.oidc.directory
    assert removed.status_code == 204
    assert after.status_code == 404
    rows = await audit_rows(signin.db, "sso.change")
    assert [r["detail"]["after"] and r["detail"]["after"]["protocol"] for r in rows] == [
        "saml",
        "oidc",
        None,
    ]
    assert rows[1]["detail"]["before"]["protocol"] == "saml"
    assert "s3cret-value" not in str(rows)


@pytest.mark.claim("AUTH-2")
@pytest.mark.parametrize("plan", ["free", "pro"])
async def test_sso_configuration_needs_the_team_plan(
    signin: Signin, make_tenant: MakeTenant, auth_headers: AuthHeaders, plan: str
) -> None:
    lower = await make_tenant(plan=plan)
    headers = auth_headers(lower.owner, lower)
    body = {"protocol": "oidc", "kind": "google_workspace", "directory": "example.org"}
    body |= {"client_id": "x", "client_secret": "y"}
    put = await signin.client.put(SSO, json=body, headers=headers)
    get = await signin.client.get(SSO, headers=headers)

    for refused in (put, get):
        assert refused.status_code == 402
        assert refused.json()["required_plan"] == "team"
    async with signin.db.owner() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM sso_configs")
        assert (await cur.fetchone() or {})["n"] == 0


@pytest.mark.claim("AUTH-2")
async def test_a_member_may_not_configure_sso(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    response = await signin.client.delete(SSO, headers=auth_headers(tenant.member, tenant))
    assert response.status_code == 403


@pytest.mark.claim("AUTH-2")
async def test_bad_saml_configuration_is_a_clear_422(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    headers = auth_headers(tenant.admin, tenant)
    bad_cert = {
        "protocol": "saml",
        "idp_entity_id": "https://idp.example",
        "idp_sso_url": "https://idp.example/sso",
        "idp_certificate": "not a certificate",
    }
    both = {"protocol": "saml", "metadata_xml": "<x/>", "idp_entity_id": "https://idp.example"}
    for body in (bad_cert, both, {"protocol": "saml", "metadata_xml": "<EntityDescriptor/>"}):
        response = await signin.client.put(SSO, json=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.claim("AUTH-2", "LOG-1")
async def test_saml_sign_in_provisions_a_member_of_that_tenant(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    first = await me(signin, await saml_sign_in(signin, tenant, "newcomer@corp.example"))
    second = await me(signin, await saml_sign_in(signin, tenant, "newcomer@corp.example"))

    assert first["tenant_id"] == second["tenant_id"] == str(tenant.id)
    assert first["id"] == second["id"]
    assert first["role"] == "member"
    rows = [r for r in await audit_rows(signin.db, "signin") if r["outcome"] == "success"]
    assert [r["detail"] for r in rows] == [{"provider": "sso-saml"}] * 2
    assert {r["tenant_id"] for r in rows} == {tenant.id}


@pytest.mark.claim("AUTH-2")
async def test_saml_sign_in_of_an_existing_member_keeps_their_role(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    found = await me(signin, await saml_sign_in(signin, tenant, tenant.admin.email))

    assert found["id"] == str(tenant.admin.id)
    assert found["role"] == "admin"


@pytest.mark.claim("AUTH-2")
async def test_saml_refuses_an_outsider_account(
    signin: Signin, tenant: TenantFixture, other_tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    response = await saml_sign_in(signin, tenant, other_tenant.owner.email)

    assert response.status_code == 403
    assert response.json()["reason"] == "not_member"


@pytest.mark.claim("AUTH-2", "LOG-1")
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (SamlFault.UNSIGNED, "saml_unsigned"),
        (SamlFault.WRONG_SIGNATURE, "saml_bad_signature"),
        (SamlFault.TAMPERED, "saml_bad_signature"),
        (SamlFault.WRONG_AUDIENCE, "saml_audience"),
        (SamlFault.EXPIRED, "saml_expired"),
        (SamlFault.NOT_YET_VALID, "saml_not_yet_valid"),
    ],
)
async def test_invalid_saml_assertion_is_refused_and_audited(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders, fault: SamlFault, reason: str
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    signin.saml.inject_fault(fault)
    response = await saml_sign_in(signin, tenant, "victim@corp.example")

    assert response.status_code == 401, response.text
    assert response.json()["reason"] == reason
    assert "set-cookie" not in response.headers
    [row] = await audit_rows(signin.db, "signin")
    assert row["tenant_id"] == tenant.id
    assert row["outcome"] == "failure"
    assert row["detail"] == {"provider": "sso-saml", "reason": reason}


@pytest.mark.claim("AUTH-2")
async def test_replayed_saml_response_is_refused(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    acs, fields = await signin.idp_form(await signin.sso_start(tenant.id), "once@corp.example")
    first = await signin.post_acs(acs, fields)
    replay = await signin.post_acs(acs, fields)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["reason"] == "saml_replay"


@pytest.mark.claim("AUTH-2")
async def test_saml_response_to_another_request_is_refused(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    acs, answer_to_first = await signin.idp_form(
        await signin.sso_start(tenant.id), "a@corp.example"
    )
    _, answer_to_second = await signin.idp_form(await signin.sso_start(tenant.id), "a@corp.example")
    swapped = answer_to_first | {"RelayState": answer_to_second["RelayState"]}
    response = await signin.post_acs(acs, swapped)

    assert response.status_code == 401
    assert response.json()["reason"] == "saml_in_response_to"


@pytest.mark.claim("AUTH-2")
async def test_saml_response_at_another_tenants_acs_is_refused(
    signin: Signin, tenant: TenantFixture, other_tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    await configure_saml(signin, other_tenant, auth_headers)
    _, fields = await signin.idp_form(await signin.sso_start(tenant.id), "a@corp.example")
    response = await signin.post_acs(f"/api/v1/signin/saml/{other_tenant.id}/acs", fields)

    assert response.status_code == 401
    assert response.json()["reason"] == "saml_audience"


@pytest.mark.claim("AUTH-2")
async def test_sso_sign_in_stops_when_the_tenant_leaves_the_team_plan(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    await configure_saml(signin, tenant, auth_headers)
    acs, fields = await signin.idp_form(await signin.sso_start(tenant.id), "late@corp.example")
    await tenants_service.set_plan(signin.db, tenant.id, Plan.PRO)
    start = await signin.client.post("/api/v1/signin/sso/start", json={"tenant_id": str(tenant.id)})
    response = await signin.post_acs(acs, fields)

    assert start.status_code == 402
    assert response.status_code == 402
    assert response.json()["reason"] == "sso_not_in_plan"


@pytest.mark.claim("AUTH-2")
async def test_sso_start_without_configuration_is_a_clear_404(
    signin: Signin, tenant: TenantFixture
) -> None:
    response = await signin.client.post(
        "/api/v1/signin/sso/start", json={"tenant_id": str(tenant.id)}
    )
    assert response.status_code == 404
    assert "no single sign-on" in response.json()["detail"]


@pytest.mark.claim("AUTH-2")
async def test_entra_id_sso_signs_into_the_tenant(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    client_id, secret = signin.oidc.register_client()
    body = {"protocol": "oidc", "kind": "entra", "directory": signin.oidc.directory}
    body |= {"client_id": client_id, "client_secret": secret}
    put = await signin.client.put(SSO, json=body, headers=auth_headers(tenant.admin, tenant))
    assert put.status_code == 200, put.text
    url = await signin.sso_start(tenant.id)
    assert url.startswith(f"{signin.oidc.url}/microsoft/{signin.oidc.directory}/")
    redirect = await signin.authorize(url, login_hint="staff@corp.example")
    found = await me(signin, await signin.callback(redirect["code"], redirect["state"]))

    assert found["tenant_id"] == str(tenant.id)
    assert found["role"] == "member"


@pytest.mark.claim("AUTH-2")
async def test_google_workspace_sso_requires_the_domain(
    signin: Signin, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    client_id, secret = signin.oidc.register_client()
    body = {"protocol": "oidc", "kind": "google_workspace", "directory": "corp.example"}
    body |= {"client_id": client_id, "client_secret": secret}
    put = await signin.client.put(SSO, json=body, headers=auth_headers(tenant.admin, tenant))
    assert put.status_code == 200, put.text
    staff = signin.oidc.add_account(Account(email="ws@corp.example", hosted_domain="corp.example"))
    outsider = signin.oidc.add_account(Account(email="someone@gmail.example"))

    url = await signin.sso_start(tenant.id)
    assert "hd=corp.example" in url
    inside = await signin.authorize(url, login_hint=staff.email)
    found = await me(signin, await signin.callback(inside["code"], inside["state"]))
    outside = await signin.authorize(await signin.sso_start(tenant.id), login_hint=outsider.email)
    refused = await signin.callback(outside["code"], outside["state"])

    assert found["tenant_id"] == str(tenant.id)
    assert refused.status_code == 401
    assert refused.json()["reason"] == "wrong_domain"
