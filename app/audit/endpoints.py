"""HTTP for the audit trail: a tenant's auth events and a site's change history."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuthEventOut, SiteChangeOut
from app.core.deps import TenantConn, require_feature, require_permission
from app.core.security import Principal

router = APIRouter(
    prefix="/api/v1/audit", tags=["audit"], dependencies=[require_feature("audit_log")]
)

CanRead = Annotated[Principal, require_permission("audit:read")]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/events")
async def list_events(
    principal: CanRead,
    conn: TenantConn,
    limit: Limit = 100,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> list[AuthEventOut]:
    """Newest first; page with ``before_id`` = the last id you received."""
    rows = await service.list_auth_events(
        conn, principal.tenant_id, limit=limit, before_id=before_id
    )
    return [AuthEventOut.model_validate(row) for row in rows]


@router.get("/sites/{site_id}/changes")
async def list_site_changes(
    site_id: uuid.UUID, principal: CanRead, conn: TenantConn, limit: Limit = 100
) -> list[SiteChangeOut]:
    """Who changed this site's settings, when, before and after; newest first."""
    rows = await service.list_site_changes(conn, principal.tenant_id, site_id, limit=limit)
    return [SiteChangeOut.model_validate(row) for row in rows]
