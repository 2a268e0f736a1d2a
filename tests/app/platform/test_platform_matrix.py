"""The permission matrix, driven by the app's route table: every endpoint x every role x own
tenant / other tenant. A new endpoint is in the matrix the moment it is registered; one whose
path parameter has no resource factory below fails until someone says what it points at."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.core.db import Database
from app.core.roles import Role, allows
from app.sites import repository as sites
from app.tenants import repository as tenants
from tests.app.conftest import AuthHeaders, MakeTenant, TenantFixture
from tests.app.kb_factories import KB_CHAT_FACTORIES
from tests.app.platform.helpers import snapshot
from tests.app.platform.routes import ROUTES, RouteInfo
from tests.app.privacy_fixtures import PRIVACY_FACTORIES

Factory = Callable[[Database, TenantFixture], Awaitable[str]]


async def _site(db: Database, tenant: TenantFixture) -> str:
    values = {"name": "Site", "allowed_origins": [], "persona": "", "language": "en", "phase": ""}
    async with db.tenant(tenant.id) as conn:
        return str((await sites.insert_site(conn, tenant.id, values))["id"])


async def _member(_: Database, tenant: TenantFixture) -> str:
    return str(tenant.member.id)


async def _invitation(db: Database, tenant: TenantFixture) -> str:
    async with db.tenant(tenant.id) as conn:
        row = await tenants.insert_invitation(
            conn,
            tenant.id,
            email="x@example.test",
            role="member",
            token_hash=uuid.uuid4().bytes,
            invited_by=tenant.owner.id,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    return str(row["id"])


# What each path parameter names: a resource of the given tenant.
RESOURCE_FACTORIES: dict[str, Factory] = {
    "site_id": _site,
    "user_id": _member,
    "invitation_id": _invitation,
    **KB_CHAT_FACTORIES,
    **PRIVACY_FACTORIES,
}

# Valid bodies, so that an allowed call really succeeds.
BODIES: dict[str, dict[str, Any]] = {
    "POST /api/v1/auth/refresh": {"refresh_token": "unknown"},
    "POST /api/v1/auth/signout": {"refresh_token": "unknown"},
    "PATCH /api/v1/tenant": {"name": "Renamed"},
    "PUT /api/v1/tenant/members/{user_id}/role": {"role": "admin"},
    "POST /api/v1/tenant/invitations": {"email": "new@example.test", "role": "member"},
    "POST /api/v1/invitations/accept": {"token": f"{uuid.uuid4().hex}.not-a-real-token"},
    "PATCH /api/v1/users/me": {"display_name": "New Name"},
    "POST /api/v1/sites": {"name": "New site", "allowed_origins": ["https://example.com"]},
    "PATCH /api/v1/sites/{site_id}": {"persona": "Friendly and brief"},
}
# Routes whose allowed call answers otherwise than 2xx in this generic setting, and why.
EXPECTED: dict[str, int] = {
    "POST /api/v1/invitations/accept": 404,  # the token is unknown; accepting is tested apart
}
pytestmark = pytest.mark.anyio
PARAM = re.compile(r"{(\w+)(?::\w+)?}")

PROTECTED = [r for r in ROUTES if not r.public]


def _strict(route: RouteInfo) -> bool:
    """An allowed call must succeed: this helper's routes, given a valid body if they take one."""
    return route.platform and (not route.has_body or route.id in BODIES)


async def _path(route: RouteInfo, db: Database, tenant: TenantFixture) -> tuple[str, list[str]]:
    path, made = route.path, []
    for name in PARAM.findall(route.path):
        factory = RESOURCE_FACTORIES.get(name)
        if factory is None:
            pytest.fail(f"{route.id}: add a resource factory for path parameter '{name}'")
        made.append(await factory(db, tenant))
        path = PARAM.sub(made[-1], path, count=1)
    return path, made


def _secrets_of(tenant: TenantFixture, resources: list[str]) -> list[str]:
    users = [tenant.owner, tenant.admin, tenant.member]
    return [
        str(tenant.id),
        tenant.name,
        *resources,
        *(str(u.id) for u in users),
        *(u.email for u in users),
    ]


def test_every_route_is_protected_or_declared_public() -> None:
    undeclared = [r.id for r in ROUTES if not r.public and not r.authenticated]
    assert not undeclared, f"routes with no bearer check and not declared public: {undeclared}"
    assert len(PROTECTED) >= 15


@pytest.mark.claim("AUTHZ-1", "AUTHZ-2", "AUTH-3")
@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r.id)
async def test_permission_matrix(
    route: RouteInfo,
    client: httpx.AsyncClient,
    db: Database,
    make_tenant: MakeTenant,
    auth_headers: AuthHeaders,
) -> None:
    body = BODIES.get(route.id, {}) if route.has_body else None
    theirs = await make_tenant()
    their_path, theirs_made = await _path(route, db, theirs)
    theirs_before = await snapshot(db, theirs)
    cases = []
    for role in Role:
        allowed = route.permission is None or allows(role, route.permission)
        for scope in ("own", "other"):
            mine = await make_tenant()  # fresh: an allowed call may change or remove things
            path = (await _path(route, db, mine))[0] if scope == "own" else their_path
            mine_before = None if allowed else await snapshot(db, mine)
            response = await client.request(
                route.method, path, json=body, headers=auth_headers(mine.user(role), mine)
            )
            case = f"{route.id} as {role} on {scope} tenant -> {response.status_code}"
            cases.append(case)
            assert "set-cookie" not in response.headers, case
            assert response.status_code < 500, f"{case}: {response.text}"
            if not allowed:
                assert response.status_code == 403, case
                assert response.headers["content-type"] == "application/problem+json", case
                assert await snapshot(db, mine) == mine_before, f"{case} changed data"
            elif scope == "own":
                assert response.status_code not in {401, 403}, f"{case}: {response.text}"
                if _strict(route):
                    expected = EXPECTED.get(route.id)
                    ok = response.status_code == expected if expected else response.is_success
                    assert ok, f"{case}: {response.text}"
            elif theirs_made:  # their resource through my token: not found, or an empty list
                nothing = response.status_code in {404, 422} or response.json() == []
                assert nothing, f"{case}: {response.text}"
            leaked = [s for s in _secrets_of(theirs, theirs_made) if s in response.text]
            assert not leaked, f"{case} leaked {leaked}"
    assert await snapshot(db, theirs) == theirs_before, f"the other tenant changed: {cases}"


@pytest.mark.claim("AUTH-3")
@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r.id)
async def test_refused_without_valid_token(route: RouteInfo, client: httpx.AsyncClient) -> None:
    path = PARAM.sub(str(uuid.uuid4()), route.path)
    for headers in ({}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic eDp5"}):
        response = await client.request(route.method, path, json={}, headers=headers)
        assert response.status_code == 401, (route.id, headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["status"] == 401
        assert "set-cookie" not in response.headers


@pytest.mark.claim("AUTH-3")
@pytest.mark.parametrize("route", [r for r in ROUTES if r.public], ids=lambda r: r.id)
async def test_public_routes_set_no_cookie(route: RouteInfo, client: httpx.AsyncClient) -> None:
    path = PARAM.sub("google", route.path)
    response = await client.request(route.method, path, json={} if route.has_body else None)
    assert response.status_code < 500, response.text
    assert "set-cookie" not in response.headers
