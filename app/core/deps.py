"""Request dependencies: the database, the verified principal, permissions and plan features.

Use them as ``Annotated`` aliases in endpoint signatures::

    async def endpoint(principal: Annotated[Principal, require_permission("sites:write")],
                       conn: TenantConn) -> ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.db import Database, TenantConnection
from app.core.plans import PLAN_FEATURES, Feature, Plan, cheapest_plan_with
from app.core.problems import ApiError
from app.core.roles import Permission, allows
from app.core.security import InvalidTokenError, Principal, TokenIssuer
from app.core.session_repository import member_transaction
from app.core.settings import Settings
from app.privacy.checks import refusal_message

_BEARER = {"WWW-Authenticate": "Bearer"}
# Dependencies are coroutines even when they need not be: FastAPI runs plain functions in a
# thread pool, which costs more than the work they do.
_bearer = HTTPBearer(auto_error=False)


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.issuer
    return issuer


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


Db = Annotated[Database, Depends(get_db)]
Issuer = Annotated[TokenIssuer, Depends(get_issuer)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
ClientIp = Annotated[str | None, Depends(client_ip)]


async def current_principal(
    issuer: Issuer,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a verified access token in the Authorization header, else 401."""
    if credentials is None:
        raise ApiError(
            401,
            "This endpoint needs an access token: 'Authorization: Bearer <token>'.",
            headers=_BEARER,
        )
    try:
        return issuer.verify(credentials.credentials)
    except InvalidTokenError:
        raise ApiError(
            401,
            "The access token is invalid or expired; refresh it or sign in again.",
            headers=_BEARER,
        ) from None


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def tenant_connection(db: Db, principal: CurrentPrincipal) -> AsyncIterator[TenantConnection]:
    """The request's transaction, scoped to the caller's tenant; the membership is re-checked
    in it, so a removed member, a changed role or an erasure (GDPR-17) stops working at once,
    not at token expiry. Both checks ride on the round trip that starts the transaction."""
    tenant_id, user_id = principal.tenant_id, principal.user_id
    async with member_transaction(db, tenant_id, user_id) as (conn, role, erasure):
        if role != principal.role:
            raise ApiError(
                401,
                "Your membership of this tenant changed; refresh the session.",
                headers=_BEARER,
            )
        refusal = refusal_message(erasure)
        if refusal:
            raise ApiError(401, refusal, headers=_BEARER)
        yield conn


# scope="function": the transaction commits before the response is sent, so a client that
# got its answer reads its own writes on its next request (and never sees a failed commit as
# a success). FastAPI's default would commit after sending.
TenantConn = Annotated[TenantConnection, Depends(tenant_connection, scope="function")]


class PermissionCheck:
    """Dependency refusing (403) a caller whose role lacks ``permission``."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, principal: CurrentPrincipal, _conn: TenantConn) -> Principal:
        if not allows(principal.role, self.permission):
            raise ApiError(403, f"Your role ({principal.role}) does not allow '{self.permission}'.")
        return principal


class FeatureCheck:
    """Dependency refusing (402) a call whose tenant's plan lacks ``feature``."""

    def __init__(self, feature: Feature) -> None:
        self.feature = feature

    async def __call__(self, principal: CurrentPrincipal, conn: TenantConn) -> Plan:
        cur = await conn.execute("SELECT plan FROM tenants WHERE id = %s", [principal.tenant_id])
        row = await cur.fetchone()
        plan = Plan(row["plan"]) if row else Plan.FREE
        if self.feature not in PLAN_FEATURES[plan]:
            needed = cheapest_plan_with(self.feature)
            raise ApiError(
                402,
                f"'{self.feature}' needs the {needed.title()} plan or higher;"
                f" this tenant is on the {plan.title()} plan.",
                title="Plan upgrade required",
                feature=self.feature.value,
                plan=plan.value,
                required_plan=needed.value,
            )
        return plan


def require_permission(permission: str) -> Any:
    """``Annotated[Principal, require_permission("sites:write")]``; unknown names fail at import."""
    return Depends(PermissionCheck(Permission(permission)))


def require_feature(feature: str) -> Any:
    """``dependencies=[require_feature("sso")]`` on a route or router."""
    return Depends(FeatureCheck(Feature(feature)))
