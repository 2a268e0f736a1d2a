"""HTTP for a tenant's sites and their settings."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response

from app.core.deps import TenantConn, require_permission
from app.core.security import Principal
from app.sites import service
from app.sites.schemas import SiteCreate, SiteOut, SiteUpdate

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])

CanRead = Annotated[Principal, require_permission("sites:read")]
CanWrite = Annotated[Principal, require_permission("sites:write")]


@router.get("")
async def list_sites(principal: CanRead, conn: TenantConn) -> list[SiteOut]:
    return await service.list_sites(conn, principal)


@router.post("", status_code=201)
async def create_site(body: SiteCreate, principal: CanWrite, conn: TenantConn) -> SiteOut:
    return await service.create_site(conn, principal, body)


@router.get("/{site_id}")
async def get_site(site_id: uuid.UUID, principal: CanRead, conn: TenantConn) -> SiteOut:
    return await service.get_site(conn, principal, site_id)


@router.patch("/{site_id}")
async def update_site(
    site_id: uuid.UUID, body: SiteUpdate, principal: CanWrite, conn: TenantConn
) -> SiteOut:
    return await service.update_site(conn, principal, site_id, body)


@router.delete("/{site_id}", status_code=204)
async def delete_site(site_id: uuid.UUID, principal: CanWrite, conn: TenantConn) -> Response:
    await service.delete_site(conn, principal, site_id)
    return Response(status_code=204)
