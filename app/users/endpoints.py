"""HTTP for the signed-in user's own account."""

from __future__ import annotations

from fastapi import APIRouter

from app.core.deps import CurrentPrincipal, TenantConn
from app.users import service
from app.users.schemas import MeOut, ProfileUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.get("/me")
async def get_me(principal: CurrentPrincipal, conn: TenantConn) -> MeOut:
    """Your profile, current tenant and role, and every tenant you belong to."""
    return await service.me(conn, principal)


@router.patch("/me")
async def update_me(body: ProfileUpdate, principal: CurrentPrincipal, conn: TenantConn) -> MeOut:
    return await service.update_profile(conn, principal, body.display_name)
