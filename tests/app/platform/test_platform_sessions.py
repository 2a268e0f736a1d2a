"""Sessions: signed access tokens with a rotatable key set, rotating refresh tokens with reuse
detection, and no cookie anywhere (AUTH-3)."""

from __future__ import annotations

import base64
import json
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI, Response

from app.core.db import Database
from app.core.security import (
    KeySet,
    SessionRefusedError,
    SigningKey,
    TokenIssuer,
    TokenPair,
    start_session,
    write_new_key,
)
from tests.app.conftest import AuthHeaders, MakeTenant, TenantFixture

pytestmark = [pytest.mark.anyio, pytest.mark.claim("AUTH-3")]
ME = "/api/v1/users/me"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(tenant: TenantFixture, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "cloop",
        "sub": str(tenant.owner.id),
        "tid": str(tenant.id),
        "role": "owner",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    return {**claims, **changes}


async def test_a_session_gives_tokens_that_work(
    client: httpx.AsyncClient, db: Database, tenant: TenantFixture
) -> None:
    pair = await start_session(db, tenant.admin.id, tenant.id)
    assert pair.token_type == "Bearer"
    assert pair.expires_in == 600
    response = await client.get(ME, headers=_bearer(pair.access_token))
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert "set-cookie" not in response.headers


async def test_no_session_for_a_non_member(
    db: Database, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    with pytest.raises(SessionRefusedError):
        await start_session(db, other_tenant.owner.id, tenant.id)


async def test_forged_tokens_are_refused(
    client: httpx.AsyncClient, tenant: TenantFixture, issuer: TokenIssuer
) -> None:
    good = issuer.issue(tenant.owner.id, tenant.id, tenant.owner.role)
    assert (await client.get(ME, headers=_bearer(good))).status_code == 200
    ours = issuer.keys.signing
    stranger = SigningKey.generate()
    header, _payload, signature = good.split(".")
    escalated = (
        base64.urlsafe_b64encode(json.dumps(_claims(tenant, sub=str(tenant.member.id))).encode())
        .rstrip(b"=")
        .decode()
    )
    forged = {
        "expired": jwt.encode(
            _claims(tenant, iat=int(time.time()) - 700, exp=int(time.time()) - 100),
            ours.private_key,
            algorithm="ES256",
            headers={"kid": ours.kid},
        ),
        "unknown kid": jwt.encode(
            _claims(tenant), stranger.private_key, algorithm="ES256", headers={"kid": stranger.kid}
        ),
        "our kid, another key": jwt.encode(
            _claims(tenant), stranger.private_key, algorithm="ES256", headers={"kid": ours.kid}
        ),
        "no kid": jwt.encode(_claims(tenant), ours.private_key, algorithm="ES256"),
        "tampered payload": f"{header}.{escalated}.{signature}",
        "alg none": jwt.encode(_claims(tenant), "", algorithm="none", headers={"kid": ours.kid}),
        "HS256 with a guessable secret": jwt.encode(
            _claims(tenant), "cloop" * 8, algorithm="HS256", headers={"kid": ours.kid}
        ),
        "other issuer": jwt.encode(
            _claims(tenant, iss="evil"),
            ours.private_key,
            algorithm="ES256",
            headers={"kid": ours.kid},
        ),
        "no expiry": jwt.encode(
            {k: v for k, v in _claims(tenant).items() if k != "exp"},
            ours.private_key,
            algorithm="ES256",
            headers={"kid": ours.kid},
        ),
        "truncated": good[:-10],
    }
    for name, token in forged.items():
        response = await client.get(ME, headers=_bearer(token))
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json"
        assert "set-cookie" not in response.headers


async def test_keys_rotate_without_breaking_sessions(tmp_path: Path, tenant: TenantFixture) -> None:
    first = write_new_key(tmp_path)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    old = TokenIssuer(KeySet.from_dir(tmp_path), "cloop", 60, 60)
    old_token = old.issue(tenant.owner.id, tenant.id, tenant.owner.role)
    time.sleep(1.1)  # key files are named by time, newest last
    write_new_key(tmp_path)
    rotated = TokenIssuer(KeySet.from_dir(tmp_path), "cloop", 60, 60)
    assert rotated.keys.signing.kid != old.keys.signing.kid
    assert {k["kid"] for k in rotated.keys.jwks()["keys"]} == {
        old.keys.signing.kid,
        rotated.keys.signing.kid,
    }
    assert rotated.verify(old_token).user_id == tenant.owner.id
    new_token = rotated.issue(tenant.owner.id, tenant.id, tenant.owner.role)
    assert jwt.get_unverified_header(new_token)["kid"] == rotated.keys.signing.kid
    first.unlink()  # retire the old key
    retired = TokenIssuer(KeySet.from_dir(tmp_path), "cloop", 60, 60)
    assert retired.verify(new_token).tenant_id == tenant.id
    with pytest.raises(Exception, match="unknown signing key"):
        retired.verify(old_token)


async def test_jwks_publishes_public_keys_only(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kid"] == issuer.keys.signing.kid
    assert key["alg"] == "ES256"
    assert key["kty"] == "EC"
    assert "d" not in key


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, db: Database, tenant: TenantFixture
) -> None:
    first = await start_session(db, tenant.member.id, tenant.id)
    response = await _refresh(client, first.refresh_token)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    second = TokenPair.model_validate(response.json())
    assert second.refresh_token != first.refresh_token
    assert (await client.get(ME, headers=_bearer(second.access_token))).status_code == 200

    replay = await _refresh(client, first.refresh_token)  # a stolen, already used token
    assert replay.status_code == 401
    assert replay.headers["content-type"] == "application/problem+json"
    # The whole family is revoked: the legitimate holder's newest token no longer works either.
    assert (await _refresh(client, second.refresh_token)).status_code == 401
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE revoked_at IS NULL) AS live, count(*) AS total"
            " FROM refresh_tokens WHERE tenant_id = %s",
            [tenant.id],
        )
        assert await cur.fetchone() == {"live": 0, "total": 2}
        cur = await conn.execute(
            "SELECT detail->>'reason' AS reason FROM audit_events"
            " WHERE event = 'token.refresh' AND outcome = 'failure' ORDER BY id"
        )
        reasons = [r["reason"] for r in await cur.fetchall()]
    assert reasons[0] == "reuse detected: session family revoked"


async def test_refresh_tokens_are_stored_hashed(db: Database, tenant: TenantFixture) -> None:
    pair = await start_session(db, tenant.member.id, tenant.id)
    async with db.owner() as conn:
        cur = await conn.execute("SELECT token_hash FROM refresh_tokens")
        stored = [bytes(r["token_hash"]) for r in await cur.fetchall()]
    assert len(stored) == 1
    assert pair.refresh_token.encode() not in stored[0]
    assert len(stored[0]) == 32


async def test_bad_refresh_tokens_are_refused(
    client: httpx.AsyncClient, tenant: TenantFixture
) -> None:
    for token in ("garbage", f"{tenant.id.hex}.guess", f"{uuid.uuid4().hex}.x", "a" * 512):
        response = await _refresh(client, token)
        assert response.status_code == 401, token
    assert (await client.post("/api/v1/auth/refresh", json={})).status_code == 422


async def test_sign_out_ends_the_session(
    client: httpx.AsyncClient, db: Database, tenant: TenantFixture
) -> None:
    pair = await start_session(db, tenant.member.id, tenant.id)
    response = await client.post("/api/v1/auth/signout", json={"refresh_token": pair.refresh_token})
    assert response.status_code == 204
    assert "set-cookie" not in response.headers
    assert (await _refresh(client, pair.refresh_token)).status_code == 401


async def test_role_change_and_removal_take_effect_at_once(
    client: httpx.AsyncClient,
    db: Database,
    make_tenant: MakeTenant,
    auth_headers: AuthHeaders,
) -> None:
    tenant = await make_tenant()
    session = await start_session(db, tenant.member.id, tenant.id)
    owner = auth_headers(tenant.owner, tenant)
    url = f"/api/v1/tenant/members/{tenant.member.id}"
    changed = await client.put(f"{url}/role", json={"role": "admin"}, headers=owner)
    assert changed.status_code == 200
    assert changed.json()["role"] == "admin"
    # The old token says "member": refused until refreshed; its refresh family was revoked.
    assert (await client.get(ME, headers=_bearer(session.access_token))).status_code == 401
    assert (await _refresh(client, session.refresh_token)).status_code == 401
    admin_session = await start_session(db, tenant.member.id, tenant.id)
    assert (await client.get(ME, headers=_bearer(admin_session.access_token))).status_code == 200
    assert (await client.delete(url, headers=owner)).status_code == 204
    assert (await client.get(ME, headers=_bearer(admin_session.access_token))).status_code == 401


async def test_no_response_ever_sets_a_cookie(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The guarantee is the middleware's, so it holds for routes written later too."""

    @app.get("/test-cookie")
    async def sets_cookie() -> Response:
        response = Response("x")
        response.set_cookie("session", "stolen")
        return response

    response = await client.get("/test-cookie")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
