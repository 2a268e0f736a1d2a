"""HTTP of analytics (a Pro feature)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.analytics import service
from app.analytics.schemas import Analytics
from app.core.deps import TenantConn, require_feature, require_permission
from app.core.security import Principal

router = APIRouter(prefix="/api/v1/sites/{site_id}/analytics", tags=["analytics"])

CanRead = Annotated[Principal, require_permission("analytics:read")]


@router.get("", dependencies=[require_feature("analytics")])
async def site_analytics(
    site_id: uuid.UUID,
    principal: CanRead,
    conn: TenantConn,
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> Analytics:
    return await service.site_analytics(conn, principal.tenant_id, site_id, days)
