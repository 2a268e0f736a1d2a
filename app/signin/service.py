"""Sign-in rules: flows are single use and short-lived, identities map to users, SSO is per tenant.

Product-wide providers (Google, Microsoft, GitHub) sign a person in with a verified e-mail
address; a tenant's SSO signs people into that tenant only: a new address becomes a Member,
an existing account must already be a member. Every outcome is an audited auth event (LOG-1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any, NoReturn

import httpx

from app.audit.service import FAILURE, SUCCESS, record_auth_event, record_member_action
from app.core.db import Connection, Database, TenantConnection
from app.core.plans import PLAN_FEATURES, Feature, Plan
from app.core.problems import ApiError
from app.core.roles import Role
from app.core.security import Principal, SessionRefusedError, TokenPair, start_session
from app.core.session_repository import membership_role
from app.core.tenancy import TenantId
from app.signin import oidc, repository, saml
from app.signin.oidc import ExternalIdentity, FlowSecrets, SigninError
from app.signin.schemas import (
    CallbackIn,
    OidcKind,
    OidcSsoIn,
    ProviderName,
    SamlSsoIn,
    SsoConfigOut,
    StartOut,
)
from app.signin.settings import SigninSettings
from app.tenants import repository as tenants
from app.tenants.service import create_tenant
from app.users import repository as users
from app.users.service import ensure_user

SSO_OIDC = "sso-oidc"
SSO_SAML = "sso-saml"


def _state_hash(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


def product_provider(settings: SigninSettings, name: ProviderName) -> oidc.Provider | None:
    """A product-wide provider from settings; None when it has no client configured."""
    if name is ProviderName.GITHUB:
        if not settings.github_client_id:
            return None
        return oidc.OAuthProvider(
            key=name.value,
            client_id=settings.github_client_id,
            client_secret=settings.github_client_secret.get_secret_value(),
            authorize_url=settings.github_authorize_url,
            token_url=settings.github_token_url,
            api_url=settings.github_api_url,
        )
    prefix = name.value
    client_id: str = getattr(settings, f"{prefix}_client_id")
    if not client_id:
        return None
    return oidc.OidcProvider(
        key=name.value,
        client_id=client_id,
        client_secret=getattr(settings, f"{prefix}_client_secret").get_secret_value(),
        issuer=getattr(settings, f"{prefix}_issuer"),
    )


def configured_providers(settings: SigninSettings) -> list[ProviderName]:
    return [name for name in ProviderName if product_provider(settings, name)]


def sp_settings(settings: SigninSettings, tenant_id: TenantId) -> saml.SpSettings:
    """This service provider's entity id and ACS URL for one tenant."""
    entity_id = f"{settings.public_url.rstrip('/')}/api/v1/signin/saml/{tenant_id}"
    return saml.SpSettings(entity_id=entity_id, acs_url=f"{entity_id}/acs")


def _sso_oidc_provider(
    settings: SigninSettings, tenant_id: TenantId, config: dict[str, Any]
) -> oidc.OidcProvider:
    kind = OidcKind(config["oidc_kind"])
    workspace = kind is OidcKind.GOOGLE_WORKSPACE
    return oidc.OidcProvider(
        key=f"sso:{tenant_id}",
        client_id=config["oidc_client_id"],
        client_secret=config["oidc_client_secret"],
        issuer=settings.google_issuer
        if workspace
        else settings.entra_issuer_template.format(directory=config["oidc_directory"]),
        hosted_domain=config["oidc_directory"] if workspace else None,
    )


def _idp(config: dict[str, Any]) -> saml.IdpSettings:
    return saml.IdpSettings(
        config["saml_idp_entity_id"], config["saml_idp_sso_url"], config["saml_idp_certificate"]
    )


async def _refuse(
    db: Database,
    error: SigninError,
    *,
    provider: str,
    ip: str | None,
    tenant_id: TenantId | None = None,
    actor: str | None = None,
) -> NoReturn:
    """Audit a failed sign-in, then answer with a problem the user can read."""
    await record_auth_event(
        db,
        event="signin",
        actor=actor,
        tenant_id=tenant_id,
        ip=ip,
        outcome=FAILURE,
        detail={"provider": provider, "reason": error.reason},
    )
    raise ApiError(error.status, str(error), title="Sign-in failed", reason=error.reason)


# -- product-wide providers --------------------------------------------------------------------
async def start(
    db: Database, http: httpx.AsyncClient, settings: SigninSettings, name: ProviderName
) -> StartOut:
    """Begin an authorization-code flow with PKCE; state, nonce and verifier stay here."""
    provider = product_provider(settings, name)
    if provider is None:
        raise ApiError(404, f"Sign-in with {name.value} is not configured.")
    flow = FlowSecrets.new()
    async with db.unscoped() as conn:
        await _store_flow(conn, None, settings, flow, provider=name.value)
    try:
        url = await oidc.authorization_url(http, provider, settings.redirect_uri, flow)
    except SigninError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return StartOut(authorization_url=url, expires_in=settings.flow_ttl_seconds)


async def _store_flow(
    conn: Connection,
    tenant_id: TenantId | None,
    settings: SigninSettings,
    flow: FlowSecrets,
    *,
    provider: str,
    saml_request_id: str | None = None,
) -> None:
    await repository.insert_flow(
        conn,
        tenant_id,
        state_hash=_state_hash(flow.state),
        provider=provider,
        nonce=None if saml_request_id else flow.nonce,
        code_verifier=None if saml_request_id else flow.verifier,
        saml_request_id=saml_request_id,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.flow_ttl_seconds),
    )


async def _take_flow(db: Database, state: str) -> dict[str, Any]:
    async with db.unscoped() as conn:
        flow = await repository.take_flow(conn, _state_hash(state))
    if flow is None:
        raise SigninError("bad_state", "This sign-in link is unknown or was already used.")
    if flow["expired"]:
        raise SigninError("expired_state", "This sign-in attempt has expired; start again.")
    return flow


async def callback(
    db: Database,
    http: httpx.AsyncClient,
    settings: SigninSettings,
    body: CallbackIn,
    ip: str | None,
) -> TokenPair:
    """Finish an OIDC/OAuth flow (product-wide or a tenant's OIDC SSO) with a token pair."""
    flow: dict[str, Any] | None = None
    try:
        flow = await _take_flow(db, body.state)
        if flow["provider"] == SSO_SAML:
            raise SigninError("bad_state", "This sign-in attempt expects a SAML response.")
        tenant_id = TenantId(flow["tenant_id"]) if flow["tenant_id"] else None
        provider = await _flow_provider(db, settings, flow, tenant_id)
        secrets = FlowSecrets(body.state, flow["nonce"], flow["code_verifier"])
        identity = await oidc.complete(
            http,
            provider,
            code=body.code,
            redirect_uri=settings.redirect_uri,
            flow=secrets,
            leeway=settings.clock_skew_seconds,
        )
    except SigninError as exc:
        tenant = TenantId(flow["tenant_id"]) if flow and flow["tenant_id"] else None
        await _refuse(
            db, exc, provider=flow["provider"] if flow else "unknown", ip=ip, tenant_id=tenant
        )
    if tenant_id is None:
        return await _sign_in_person(db, identity, ip)
    return await _sign_in_member(db, tenant_id, identity, ip, method=SSO_OIDC)


async def _flow_provider(
    db: Database, settings: SigninSettings, flow: dict[str, Any], tenant_id: TenantId | None
) -> oidc.Provider:
    if tenant_id is None:
        provider = product_provider(settings, ProviderName(flow["provider"]))
        if provider is None:
            raise SigninError("provider_disabled", "This sign-in provider is no longer offered.")
        return provider
    config = await _sso_config_for_signin(db, tenant_id)
    if config["protocol"] != "oidc":
        raise SigninError("sso_changed", "The organisation's single sign-on changed; start again.")
    return _sso_oidc_provider(settings, tenant_id, config)


async def _sign_in_person(db: Database, identity: ExternalIdentity, ip: str | None) -> TokenPair:
    """A product-wide sign-in: the linked user, else the user of the verified address, else new."""
    if not identity.email_verified:
        error = SigninError(
            "email_unverified", "The provider has not verified this e-mail address."
        )
        await _refuse(db, error, provider=identity.provider, ip=ip)
    async with db.unscoped() as conn:
        user_id = await repository.find_identity(conn, identity.provider, identity.subject)
        if user_id is None:
            user_id = await ensure_user(conn, identity.email, identity.name)
            await repository.link_identity(
                conn, user_id, identity.provider, identity.subject, identity.email
            )
        memberships = await users.memberships(conn, user_id)
    if memberships:
        tenant_id = TenantId(memberships[0]["tenant_id"])
    else:
        tenant_id = await create_tenant(db, _workspace_name(identity), user_id)
    return await _open_session(db, user_id, tenant_id, identity.provider, ip)


def _workspace_name(identity: ExternalIdentity) -> str:
    return f"{identity.name or identity.email.split('@')[0]}'s workspace"[:200]


async def _open_session(
    db: Database, user_id: uuid.UUID, tenant_id: TenantId, provider: str, ip: str | None
) -> TokenPair:
    try:
        pair = await start_session(db, user_id, tenant_id)
    except SessionRefusedError as exc:
        error = SigninError("not_member", f"{exc}.".capitalize(), 403)
        await _refuse(db, error, provider=provider, ip=ip, tenant_id=tenant_id, actor=str(user_id))
    await record_auth_event(
        db,
        event="signin",
        actor=str(user_id),
        tenant_id=tenant_id,
        ip=ip,
        outcome=SUCCESS,
        detail={"provider": provider},
    )
    return pair


# -- per-tenant SSO ----------------------------------------------------------------------------
async def _sso_config_for_signin(db: Database, tenant_id: TenantId) -> dict[str, Any]:
    """The tenant's SSO configuration, if the tenant exists, is on a plan with SSO and has one."""
    async with db.tenant(tenant_id) as conn:
        tenant = await tenants.get_tenant(conn, tenant_id)
        config = await repository.get_sso_config(conn, tenant_id)
    if tenant is None or config is None:
        raise SigninError("sso_not_configured", "This organisation has no single sign-on.", 404)
    if Feature.SSO not in PLAN_FEATURES[Plan(tenant["plan"])]:
        raise SigninError("sso_not_in_plan", "Single sign-on needs the Team plan.", 402)
    return config


async def start_sso(
    db: Database,
    http: httpx.AsyncClient,
    settings: SigninSettings,
    tenant_id: TenantId,
    ip: str | None,
) -> StartOut:
    """Begin a tenant's SSO: an OIDC authorization URL or a SAML AuthnRequest redirect."""
    try:
        config = await _sso_config_for_signin(db, tenant_id)
    except SigninError as exc:
        raise ApiError(exc.status, str(exc)) from None
    flow = FlowSecrets.new()
    if config["protocol"] == "saml":
        request_id = saml.new_request_id()
        url = saml.authn_request_url(
            _idp(config), sp_settings(settings, tenant_id), request_id, flow.state
        )
    else:
        request_id = None
        provider = _sso_oidc_provider(settings, tenant_id, config)
        try:
            url = await oidc.authorization_url(http, provider, settings.redirect_uri, flow)
        except SigninError as exc:
            await _refuse(db, exc, provider=SSO_OIDC, ip=ip, tenant_id=tenant_id)
    async with db.tenant(tenant_id) as conn:
        provider_name = SSO_SAML if request_id else SSO_OIDC
        await _store_flow(
            conn, tenant_id, settings, flow, provider=provider_name, saml_request_id=request_id
        )
    return StartOut(authorization_url=url, expires_in=settings.flow_ttl_seconds)


async def saml_acs(
    db: Database,
    settings: SigninSettings,
    tenant_id: TenantId,
    *,
    saml_response: str,
    relay_state: str,
    ip: str | None,
) -> TokenPair:
    """Verify a tenant IdP's Response (signature, issuer, audience, time, replay, request)."""
    try:
        config = await _sso_config_for_signin(db, tenant_id)
        if config["protocol"] != "saml":
            raise SigninError("sso_not_configured", "This organisation does not use SAML.", 404)
        assertion = saml.validate_response(
            saml_response,
            _idp(config),
            sp_settings(settings, tenant_id),
            now=dt.datetime.now(dt.UTC),
            skew=dt.timedelta(seconds=settings.clock_skew_seconds),
        )
        async with db.tenant(tenant_id) as conn:
            fresh = await repository.remember_assertion(
                conn, tenant_id, assertion.id, assertion.not_on_or_after
            )
        if not fresh:
            raise SigninError("saml_replay", "This assertion was already used.")
        flow = await _take_flow(db, relay_state)
        if flow["tenant_id"] != tenant_id or flow["saml_request_id"] != assertion.in_response_to:
            raise SigninError("saml_in_response_to", "The assertion answers another request.")
    except SigninError as exc:
        await _refuse(db, exc, provider=SSO_SAML, ip=ip, tenant_id=tenant_id)
    identity = ExternalIdentity(f"sso:{tenant_id}", assertion.email, assertion.email, True, "")
    return await _sign_in_member(db, tenant_id, identity, ip, method=SSO_SAML)


async def _sign_in_member(
    db: Database, tenant_id: TenantId, identity: ExternalIdentity, ip: str | None, *, method: str
) -> TokenPair:
    """An SSO sign-in into its tenant: linked user, else an existing member, else a new Member."""
    async with db.tenant(tenant_id) as conn:
        user_id = await repository.find_identity(conn, identity.provider, identity.subject)
        if user_id is None:
            user_id = await _provision_member(conn, tenant_id, identity)
    if user_id is None:
        error = SigninError(
            "not_member",
            "This e-mail address belongs to an account outside the organisation;"
            " ask an administrator to invite it.",
            403,
        )
        await _refuse(db, error, provider=method, ip=ip, tenant_id=tenant_id)
    return await _open_session(db, user_id, tenant_id, method, ip)


async def _provision_member(
    conn: TenantConnection, tenant_id: TenantId, identity: ExternalIdentity
) -> uuid.UUID | None:
    """Link the IdP account to a member with its address, or create one; None if not allowed."""
    found = await users.find_by_email(conn, identity.email)
    if found is None:
        user_id = await users.insert(conn, identity.email, identity.name)
        await tenants.insert_membership(conn, tenant_id, user_id, Role.MEMBER)
    elif await membership_role(conn, tenant_id, found["id"]) is not None:
        user_id = found["id"]
    else:
        return None
    await repository.link_identity(
        conn, user_id, identity.provider, identity.subject, identity.email
    )
    return user_id


# -- SSO configuration (Team plan) -------------------------------------------------------------
def _config_out(settings: SigninSettings, tenant_id: TenantId, row: dict[str, Any]) -> SsoConfigOut:
    sp = sp_settings(settings, tenant_id)
    return SsoConfigOut(
        **{k: v for k, v in row.items() if k in SsoConfigOut.model_fields},
        sp_entity_id=sp.entity_id,
        sp_acs_url=sp.acs_url,
        oidc_redirect_uri=settings.redirect_uri,
    )


async def get_sso(
    conn: TenantConnection, settings: SigninSettings, tenant_id: TenantId
) -> SsoConfigOut:
    row = await repository.get_sso_config(conn, tenant_id)
    if row is None:
        raise ApiError(404, "Single sign-on is not configured for this tenant.")
    return _config_out(settings, tenant_id, row)


def _columns(body: OidcSsoIn | SamlSsoIn) -> dict[str, Any]:
    if isinstance(body, OidcSsoIn):
        return {
            "protocol": "oidc",
            "oidc_kind": body.kind.value,
            "oidc_directory": body.directory,
            "oidc_client_id": body.client_id,
            "oidc_client_secret": body.client_secret,
        }
    try:
        if body.metadata_xml is not None:
            idp = saml.parse_metadata(body.metadata_xml)
        else:
            assert body.idp_entity_id
            assert body.idp_sso_url
            assert body.idp_certificate
            certificate = saml.normalize_certificate(body.idp_certificate)
            idp = saml.IdpSettings(body.idp_entity_id, body.idp_sso_url, certificate)
    except SigninError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return {
        "protocol": "saml",
        "saml_idp_entity_id": idp.entity_id,
        "saml_idp_sso_url": idp.sso_url,
        "saml_idp_certificate": idp.certificate,
    }


def _summary(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit trail keeps of a configuration: no secret, no certificate body."""
    if row is None:
        return None
    keys = ("protocol", "oidc_kind", "oidc_directory", "oidc_client_id", "saml_idp_entity_id")
    return {k: row.get(k) for k in keys if row.get(k) is not None}


async def put_sso(
    conn: TenantConnection,
    settings: SigninSettings,
    principal: Principal,
    body: OidcSsoIn | SamlSsoIn,
    ip: str | None,
) -> SsoConfigOut:
    """Create or replace the tenant's SSO connection; audited with before and after."""
    tenant_id = principal.tenant_id
    before = await repository.get_sso_config(conn, tenant_id)
    values = _columns(body)
    await repository.put_sso_config(conn, tenant_id, values)
    await _audit_sso_change(conn, principal, ip, before, values)
    return await get_sso(conn, settings, tenant_id)


async def delete_sso(conn: TenantConnection, principal: Principal, ip: str | None) -> None:
    before = await repository.get_sso_config(conn, principal.tenant_id)
    if not await repository.delete_sso_config(conn, principal.tenant_id):
        raise ApiError(404, "Single sign-on is not configured for this tenant.")
    await _audit_sso_change(conn, principal, ip, before, None)


async def _audit_sso_change(
    conn: TenantConnection,
    principal: Principal,
    ip: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    detail = {"before": _summary(before), "after": _summary(after)}
    await record_member_action(conn, principal, "sso.change", detail, ip=ip)
