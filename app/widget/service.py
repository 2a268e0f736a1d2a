"""Embed tokens and the widget's checks (AUTHZ-4): a token names one site and works only
from that site's allowed origins; rotation and revocation take effect at once; a site may
require visitor ids signed with HMAC-SHA256 (compared in constant time); quotas per client
IP, per token and per tenant hold whatever `Origin` a non-browser client forges."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from app.audit.service import record_site_change
from app.chat.runtime import Runtime
from app.core.db import Database, TenantConnection
from app.core.problems import ApiError
from app.core.security import Principal
from app.core.tenancy import TenantId
from app.privacy.checks import tenant_is_active
from app.ratelimit.service import hashed
from app.sites import repository as sites
from app.widget import repository
from app.widget.schemas import TokenIssued, TokenOut

TOKEN_PREFIX = "cw_"  # noqa: S105 - the public marker of embed tokens, not a secret
VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CONSENT_TEXT = (
    "I agree that {site} stores my e-mail address to contact me about my question. "
    "I can withdraw this consent at any time."
)


@dataclass(frozen=True)
class Widget:
    """A verified embed token: the tenant scope and site settings its requests run under."""

    token_id: uuid.UUID
    tenant_id: TenantId
    site_id: uuid.UUID
    site_name: str
    allowed_origins: tuple[str, ...]
    persona: str
    language: str
    phase: str
    identity_secret: str | None

    @property
    def consent_text(self) -> str:
        return CONSENT_TEXT.format(site=self.site_name)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def sign_visitor(secret: str, visitor_id: str) -> str:
    """What the site's backend computes for a signed visitor id (documented for customers)."""
    return hmac.new(secret.encode(), visitor_id.encode(), hashlib.sha256).hexdigest()


async def issue_token(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, identity_secret: str | None
) -> TokenIssued:
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    row = await repository.insert_token(
        conn, tenant_id, site_id, token_hash=token_hash(token), token_prefix=token[:10],
        identity_secret=identity_secret,
    )  # fmt: skip
    return TokenIssued(**row, token=token, identity_secret=identity_secret)


async def _site_or_404(conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID) -> None:
    if await sites.get_site(conn, tenant_id, site_id) is None:
        raise ApiError(404, "No such site in this tenant.")


async def create_token(
    conn: TenantConnection, principal: Principal, site_id: uuid.UUID, signed: bool
) -> TokenIssued:
    await _site_or_404(conn, principal.tenant_id, site_id)
    secret = secrets.token_urlsafe(32) if signed else None
    issued = await issue_token(conn, principal.tenant_id, site_id, secret)
    await _audit(conn, principal, site_id, None, issued.token_prefix)
    return issued


async def rotate_token(
    conn: TenantConnection, principal: Principal, site_id: uuid.UUID, token_id: uuid.UUID
) -> TokenIssued:
    """Revoke the token and issue its successor (same identity secret, if any)."""
    old = await repository.revoke_token(conn, principal.tenant_id, site_id, token_id)
    if old is None:
        raise ApiError(404, "No live token with this id on this site.")
    issued = await issue_token(conn, principal.tenant_id, site_id, old["identity_secret"])
    await _audit(conn, principal, site_id, old["token_prefix"], issued.token_prefix)
    return issued


async def revoke_token(
    conn: TenantConnection, principal: Principal, site_id: uuid.UUID, token_id: uuid.UUID
) -> None:
    old = await repository.revoke_token(conn, principal.tenant_id, site_id, token_id)
    if old is None:
        raise ApiError(404, "No live token with this id on this site.")
    await _audit(conn, principal, site_id, old["token_prefix"], None)


async def list_tokens(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID
) -> list[TokenOut]:
    await _site_or_404(conn, tenant_id, site_id)
    rows = await repository.list_tokens(conn, tenant_id, site_id)
    return [TokenOut.model_validate(row) for row in rows]


async def _audit(
    conn: TenantConnection,
    principal: Principal,
    site_id: uuid.UUID,
    before: str | None,
    after: str | None,
) -> None:
    await record_site_change(
        conn, actor=str(principal.user_id), tenant_id=principal.tenant_id, site_id=site_id,
        before={"token": before} if before else None, after={"token": after} if after else None,
        kind="token",
    )  # fmt: skip


async def find_widget(db: Database, token: str) -> Widget | None:
    """The live token's widget, or None for unknown or revoked tokens."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    async with db.unscoped() as conn:
        row = await repository.lookup(conn, token_hash(token))
        # A tenant whose erasure is pending has its widget off at once (GDPR-17).
        if row is None or not await tenant_is_active(conn, TenantId(row["tenant_id"])):
            return None
    return Widget(
        token_id=row["token_id"],
        tenant_id=TenantId(row["tenant_id"]),
        site_id=row["site_id"],
        site_name=row["site_name"],
        allowed_origins=tuple(row["allowed_origins"]),
        persona=row["persona"],
        language=row["language"],
        phase=row["phase"],
        identity_secret=row["identity_secret"],
    )


async def authorize(db: Database, token: str, origin: str | None) -> Widget:
    """The widget of a live token called from one of its site's allowed origins."""
    widget = await find_widget(db, token)
    if widget is None:
        raise ApiError(401, "This embed token is unknown or was revoked.")
    if origin is None or origin.rstrip("/") not in widget.allowed_origins:
        raise ApiError(403, "This page's origin is not allowed to use this embed token.")
    return widget


def check_visitor(widget: Widget, visitor_id: str, signature: str | None) -> None:
    """A well-formed visitor id, and its HMAC if the site requires signed visitors."""
    if not VISITOR_ID.match(visitor_id):
        raise ApiError(422, "visitor_id must be 8-64 letters, digits, '-' or '_'.")
    if widget.identity_secret is None:
        return
    expected = sign_visitor(widget.identity_secret, visitor_id)
    if signature is None or not hmac.compare_digest(expected, signature):
        raise ApiError(401, "This site requires a signed visitor identity; the signature is wrong.")


async def enforce_quotas(runtime: Runtime, widget: Widget, client_ip: str | None) -> None:
    """Per-IP tiers (second/minute/hour), then the token's and the tenant's budgets."""
    limits = runtime.limits
    verdict = await runtime.limiter.check(
        [
            (f"ip:{hashed(client_ip or 'unknown')}", limits.ip_tiers()),
            (f"token:{widget.token_id}", limits.token_tiers()),
            (f"tenant:{widget.tenant_id}", limits.tenant_tiers()),
        ]
    )
    if not verdict.allowed:
        raise ApiError(
            429,
            f"Too many requests ({verdict.scope} limit per {verdict.tier});"
            f" try again in {verdict.retry_after_s} s.",
            title="Too Many Requests",
            headers={"Retry-After": str(verdict.retry_after_s)},
            scope=verdict.scope,
            tier=verdict.tier,
        )
