"""HTTP for sign-in (public) and the tenant's SSO configuration (Team plan, `sso:manage`).

Sign-in answers with a JSON token pair, never a cookie: the dashboard's callback page posts
the provider's `code` and `state` here, a SAML IdP posts its form to the tenant's ACS.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import APIRouter, Body, Depends, Form, Response

from app.core.deps import ClientIp, Db, TenantConn, require_feature, require_permission
from app.core.security import Principal, TokenPair
from app.core.tenancy import TenantId
from app.signin import service
from app.signin.schemas import (
    CallbackIn,
    ProviderName,
    ProvidersOut,
    SsoConfigIn,
    SsoConfigOut,
    SsoStartIn,
    StartOut,
)
from app.signin.settings import SigninSettings, get_signin_settings


def signin_settings() -> SigninSettings:
    """Overridable in tests (`app.dependency_overrides`) to point at the stand-ins."""
    return get_signin_settings()


async def provider_http(
    settings: Annotated[SigninSettings, Depends(signin_settings)],
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for calls to providers, closed with the request."""
    async with httpx.AsyncClient(timeout=settings.http_timeout_seconds) as http:
        yield http


Settings = Annotated[SigninSettings, Depends(signin_settings)]
Http = Annotated[httpx.AsyncClient, Depends(provider_http)]
SsoAdmin = Annotated[Principal, require_permission("sso:manage")]

router = APIRouter(prefix="/api/v1", tags=["sign-in"])
sso_router = APIRouter(
    prefix="/tenant/sso", tags=["sign-in"], dependencies=[require_feature("sso")]
)


@router.get("/signin/providers")
async def providers(settings: Settings) -> ProvidersOut:
    """The product-wide providers this deployment offers."""
    return ProvidersOut(providers=service.configured_providers(settings))


# Before /signin/{provider}/start, which would otherwise take "sso" for a provider name.
@router.post("/signin/sso/start")
async def start_sso(
    body: SsoStartIn, db: Db, http: Http, settings: Settings, ip: ClientIp
) -> StartOut:
    """Where to send the browser for the tenant's own identity provider (OIDC or SAML)."""
    return await service.start_sso(db, http, settings, TenantId(body.tenant_id), ip)


@router.post("/signin/{provider}/start")
async def start(provider: ProviderName, db: Db, http: Http, settings: Settings) -> StartOut:
    """An authorization URL (state, nonce, PKCE S256) for Google, Microsoft or GitHub."""
    return await service.start(db, http, settings, provider)


@router.post("/signin/callback")
async def callback(
    body: CallbackIn, db: Db, http: Http, settings: Settings, ip: ClientIp
) -> TokenPair:
    """Finish an OIDC / OAuth flow: `code` and `state` from the redirect, tokens back."""
    return await service.callback(db, http, settings, body, ip)


@router.post("/signin/saml/{tenant_id}/acs")
async def saml_acs(
    tenant_id: uuid.UUID,
    *,
    saml_response: Annotated[str, Form(alias="SAMLResponse", min_length=1, max_length=500_000)],
    relay_state: Annotated[str, Form(alias="RelayState", min_length=1, max_length=512)],
    db: Db,
    settings: Settings,
    ip: ClientIp,
) -> TokenPair:
    """The tenant's assertion consumer service (HTTP-POST binding)."""
    return await service.saml_acs(
        db,
        settings,
        TenantId(tenant_id),
        saml_response=saml_response,
        relay_state=relay_state,
        ip=ip,
    )


@sso_router.get("")
async def get_sso(principal: SsoAdmin, conn: TenantConn, settings: Settings) -> SsoConfigOut:
    """The tenant's SSO connection and the SP values to enter at the IdP."""
    return await service.get_sso(conn, settings, principal.tenant_id)


@sso_router.put("")
async def put_sso(
    body: Annotated[SsoConfigIn, Body()],
    principal: SsoAdmin,
    conn: TenantConn,
    settings: Settings,
    ip: ClientIp,
) -> SsoConfigOut:
    """Configure OIDC (Entra ID, Google Workspace) or SAML 2.0 single sign-on."""
    return await service.put_sso(conn, settings, principal, body, ip)


@sso_router.delete("", status_code=204)
async def delete_sso(principal: SsoAdmin, conn: TenantConn, ip: ClientIp) -> Response:
    """Switch single sign-on off."""
    await service.delete_sso(conn, principal, ip)
    return Response(status_code=204)


router.include_router(sso_router)
