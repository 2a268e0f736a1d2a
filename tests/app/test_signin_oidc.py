"""Sign-in with Google, Microsoft and GitHub: authorization code + PKCE against the stand-in.

Every flow runs through the app's real client code (httpx to the provider stand-in on
loopback); the refusals each break exactly one check of state, PKCE or the ID token.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.core.logging import JsonFormatter
from app.signin.oidc import FlowSecrets
from app.standins.oidc import Account, Fault
from tests.app.conftest import CLIENT_IP, TenantFixture
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
PROVIDERS = ["google", "microsoft", "github"]


def _no_cookie(response: httpx.Response) -> None:
    assert "set-cookie" not in response.headers


@pytest.mark.claim("AUTH-1")
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_authorization_code_flow_signs_a_new_person_in(signin: Signin, provider: str) -> None:
    email = f"new-{provider}@example.org"
    response = await signin.sign_in(provider, login_hint=email)

    assert response.status_code == 200, response.text
    _no_cookie(response)
    pair = response.json()
    assert pair["token_type"] == "Bearer"
    assert pair["refresh_token"]
    me = await signin.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email
    assert me.json()["role"] == "owner"  # a first sign-in gets a workspace of its own


@pytest.mark.claim("AUTH-1")
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_start_sends_state_nonce_and_s256_challenge(signin: Signin, provider: str) -> None:
    url = await signin.start(provider)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256
    assert len(query["state"]) >= 43
    assert query["redirect_uri"] == signin.settings.redirect_uri
    assert ("nonce" in query) is (provider != "github")  # GitHub is plain OAuth 2.0
    async with signin.db.owner() as conn:
        cur = await conn.execute("SELECT id, code_verifier FROM signin_flows")
        flows = await cur.fetchall()
    assert len(flows) == 1
    assert flows[0]["id"] != query["state"].encode()  # only a hash of the state is kept
    verifier = flows[0]["code_verifier"]
    assert FlowSecrets("", "", verifier).challenge == query["code_challenge"]


@pytest.mark.claim("AUTH-1")
async def test_returning_person_reuses_identity_and_existing_member_keeps_tenant(
    signin: Signin, tenant: TenantFixture
) -> None:
    first = await signin.sign_in("google", login_hint=tenant.admin.email)
    second = await signin.sign_in("google", login_hint=tenant.admin.email)

    assert first.status_code == second.status_code == 200
    for pair in (first.json(), second.json()):
        me = await signin.client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert me.json()["id"] == str(tenant.admin.id)
        assert me.json()["tenant_id"] == str(tenant.id)
        assert me.json()["role"] == "admin"
    async with signin.db.owner() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM identities WHERE user_id = %s", [tenant.admin.id]
        )
        assert (await cur.fetchone() or {})["n"] == 1


@pytest.mark.claim("AUTH-1", "LOG-1")
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.WRONG_AUDIENCE, "wrong_audience"),
        (Fault.EXPIRED, "token_expired"),
        (Fault.BAD_SIGNATURE, "bad_signature"),
        (Fault.UNKNOWN_KID, "unknown_key"),
        (Fault.WRONG_NONCE, "wrong_nonce"),
        (Fault.WRONG_ISSUER, "wrong_issuer"),
    ],
)
@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_invalid_id_token_is_refused_and_audited(
    signin: Signin, provider: str, fault: Fault, reason: str
) -> None:
    redirect = await signin.authorize(await signin.start(provider))
    signin.oidc.inject_fault(fault)
    response = await signin.callback(redirect["code"], redirect["state"])

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == reason
    assert "access_token" not in response.json()
    _no_cookie(response)
    [row] = await audit_rows(signin.db, "signin")
    assert row["outcome"] == "failure"
    assert row["ip"] == CLIENT_IP
    assert row["detail"] == {"provider": provider, "reason": reason}


@pytest.mark.claim("AUTH-1")
async def test_unknown_state_is_refused(signin: Signin) -> None:
    redirect = await signin.authorize(await signin.start("google"))
    response = await signin.callback(redirect["code"], FlowSecrets.new().state)

    assert response.status_code == 401
    assert response.json()["reason"] == "bad_state"


@pytest.mark.claim("AUTH-1")
async def test_state_is_single_use(signin: Signin) -> None:
    redirect = await signin.authorize(await signin.start("github"))
    first = await signin.callback(redirect["code"], redirect["state"])
    again = await signin.callback(redirect["code"], redirect["state"])

    assert first.status_code == 200, first.text
    assert again.status_code == 401
    assert again.json()["reason"] == "bad_state"


@pytest.mark.claim("AUTH-1")
async def test_expired_state_is_refused(signin: Signin) -> None:
    redirect = await signin.authorize(await signin.start("google"))
    async with signin.db.owner() as conn:
        await conn.execute("UPDATE signin_flows SET expires_at = now() - interval '1 second'")
    response = await signin.callback(redirect["code"], redirect["state"])

    assert response.status_code == 401
    assert response.json()["reason"] == "expired_state"


@pytest.mark.claim("AUTH-1")
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_pkce_verifier_mismatch_is_refused_by_the_provider(
    signin: Signin, provider: str
) -> None:
    redirect = await signin.authorize(await signin.start(provider))
    async with signin.db.owner() as conn:  # as if the code had been stolen into another flow
        await conn.execute(
            "UPDATE signin_flows SET code_verifier = %s", [FlowSecrets.new().verifier]
        )
    response = await signin.callback(redirect["code"], redirect["state"])

    assert response.status_code == 401
    assert response.json()["reason"] == "code_rejected"


@pytest.mark.claim("AUTH-1")
async def test_unverified_email_is_refused(signin: Signin) -> None:
    account = signin.oidc.add_account(Account(email="unverified@example.org", email_verified=False))
    response = await signin.sign_in("google", login_hint=account.email)

    assert response.status_code == 401
    assert response.json()["reason"] == "email_unverified"


@pytest.mark.claim("AUTH-1")
async def test_unconfigured_or_unknown_provider_is_a_clear_problem(signin: Signin) -> None:
    signin.settings = signin.settings.model_copy(update={"github_client_id": ""})
    listed = await signin.client.get("/api/v1/signin/providers")
    unconfigured = await signin.client.post("/api/v1/signin/github/start")
    unknown = await signin.client.post("/api/v1/signin/myspace/start")

    assert listed.json() == {"providers": ["google", "microsoft"]}
    assert unconfigured.status_code == 404
    assert "not configured" in unconfigured.json()["detail"]
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"


@pytest.mark.claim("LOG-1")
async def test_successful_sign_in_is_one_json_line_and_one_row(
    signin: Signin, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cloop.audit"):
        response = await signin.sign_in("microsoft", login_hint="logged@example.org")
    assert response.status_code == 200

    [row] = await audit_rows(signin.db, "signin")
    assert row["outcome"] == "success"
    assert row["ip"] == CLIENT_IP
    assert row["detail"] == {"provider": "microsoft"}
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "cloop.audit"
    ]
    [line] = [entry for entry in lines if entry.get("auth_event") == "signin"]
    assert line["actor"] == row["actor"]
    assert line["tenant_id"] == str(row["tenant_id"])
    assert line["ip"] == CLIENT_IP
    assert line["outcome"] == "success"
