"""Rules for sites: the plan's site limit, and every settings change recorded (LOG-2)."""

from __future__ import annotations

import uuid
from typing import Any

from app.audit.service import record_site_change
from app.core.db import TenantConnection
from app.core.plans import SITE_LIMITS, Plan
from app.core.problems import ApiError
from app.core.security import Principal
from app.sites import repository
from app.sites.schemas import SiteCreate, SiteOut, SiteUpdate
from app.tenants import repository as tenants

_NOT_FOUND = "No such site in this tenant."


def _settings(row: dict[str, Any]) -> dict[str, Any]:
    """The recorded state of a site: its settings only."""
    return {col: row[col] for col in repository.COLUMNS}


async def list_sites(conn: TenantConnection, principal: Principal) -> list[SiteOut]:
    rows = await repository.list_sites(conn, principal.tenant_id)
    return [SiteOut.model_validate(row) for row in rows]


async def get_site(conn: TenantConnection, principal: Principal, site_id: uuid.UUID) -> SiteOut:
    row = await repository.get_site(conn, principal.tenant_id, site_id)
    if row is None:
        raise ApiError(404, _NOT_FOUND)
    return SiteOut.model_validate(row)


async def create_site(conn: TenantConnection, principal: Principal, body: SiteCreate) -> SiteOut:
    tenant_id = principal.tenant_id
    tenant = await tenants.get_tenant(conn, tenant_id)
    plan = Plan(tenant["plan"]) if tenant else Plan.FREE
    if await repository.count_sites(conn, tenant_id) >= SITE_LIMITS[plan]:
        raise ApiError(
            402,
            f"The {plan.title()} plan includes {SITE_LIMITS[plan]} site(s);"
            " upgrade the plan to add more.",
            title="Plan upgrade required",
            plan=plan.value,
        )
    row = await repository.insert_site(conn, tenant_id, body.model_dump())
    await _record(conn, principal, row["id"], None, row)
    return SiteOut.model_validate(row)


async def update_site(
    conn: TenantConnection, principal: Principal, site_id: uuid.UUID, body: SiteUpdate
) -> SiteOut:
    before = await _locked(conn, principal, site_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        return SiteOut.model_validate(before)
    after = await repository.update_site(conn, principal.tenant_id, site_id, changes)
    if _settings(after) != _settings(before):
        await _record(conn, principal, site_id, before, after)
    return SiteOut.model_validate(after)


async def delete_site(conn: TenantConnection, principal: Principal, site_id: uuid.UUID) -> None:
    before = await _locked(conn, principal, site_id)
    await repository.delete_site(conn, principal.tenant_id, site_id)
    await _record(conn, principal, site_id, before, None)


async def _locked(
    conn: TenantConnection, principal: Principal, site_id: uuid.UUID
) -> dict[str, Any]:
    """The site's row, held until the change commits; 404 if the tenant has no such site."""
    row = await repository.get_site(conn, principal.tenant_id, site_id, lock=True)
    if row is None:
        raise ApiError(404, _NOT_FOUND)
    return row


async def _record(
    conn: TenantConnection,
    principal: Principal,
    site_id: uuid.UUID,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """The change's settings before and after (None: created or deleted), for LOG-2."""
    await record_site_change(
        conn, actor=str(principal.user_id), tenant_id=principal.tenant_id, site_id=site_id,
        before=None if before is None else _settings(before),
        after=None if after is None else _settings(after),
    )  # fmt: skip
