"""HTTP for the caller's own tenant: settings, members, roles, invitations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response

from app.core.deps import (
    AppSettings,
    ClientIp,
    CurrentPrincipal,
    Db,
    TenantConn,
    require_permission,
)
from app.core.security import Principal, TokenPair
from app.tenants import service
from app.tenants.schemas import (
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    MemberOut,
    RoleChange,
    TenantOut,
    TenantUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["tenants"])

CanRead = Annotated[Principal, require_permission("tenant:read")]
CanUpdate = Annotated[Principal, require_permission("tenant:update")]
CanSeeMembers = Annotated[Principal, require_permission("members:read")]
CanManageMembers = Annotated[Principal, require_permission("members:manage")]


@router.get("/tenant")
async def get_tenant(principal: CanRead, conn: TenantConn) -> TenantOut:
    return await service.get_tenant(conn, principal.tenant_id)


@router.patch("/tenant")
async def update_tenant(body: TenantUpdate, principal: CanUpdate, conn: TenantConn) -> TenantOut:
    return await service.rename_tenant(conn, principal, body.name)


@router.get("/tenant/members")
async def list_members(principal: CanSeeMembers, conn: TenantConn) -> list[MemberOut]:
    return await service.list_members(conn, principal.tenant_id)


@router.put("/tenant/members/{user_id}/role")
async def change_role(
    user_id: uuid.UUID,
    body: RoleChange,
    principal: CanManageMembers,
    conn: TenantConn,
    ip: ClientIp,
) -> MemberOut:
    return await service.change_role(conn, principal, user_id, body.role, ip)


@router.delete("/tenant/members/{user_id}", status_code=204)
async def remove_member(
    user_id: uuid.UUID, principal: CanManageMembers, conn: TenantConn, ip: ClientIp
) -> Response:
    await service.remove_member(conn, principal, user_id, ip)
    return Response(status_code=204)


@router.post("/tenant/invitations", status_code=201)
async def invite(
    body: InvitationCreate,
    principal: CanManageMembers,
    conn: TenantConn,
    ip: ClientIp,
    settings: AppSettings,
) -> InvitationCreated:
    ttl = settings.invitation_ttl_seconds
    return await service.invite(
        conn, principal, email=body.email, role=body.role, ttl_seconds=ttl, ip=ip
    )


@router.get("/tenant/invitations")
async def list_invitations(principal: CanManageMembers, conn: TenantConn) -> list[InvitationOut]:
    return await service.list_invitations(conn, principal.tenant_id)


@router.delete("/tenant/invitations/{invitation_id}", status_code=204)
async def revoke_invitation(
    invitation_id: uuid.UUID, principal: CanManageMembers, conn: TenantConn
) -> Response:
    await service.revoke_invitation(conn, principal.tenant_id, invitation_id)
    return Response(status_code=204)


@router.post("/invitations/accept")
async def accept_invitation(
    body: InvitationAccept, principal: CurrentPrincipal, db: Db, ip: ClientIp
) -> TokenPair:
    """Join the tenant that invited you; the answer is a session in that tenant."""
    return await service.accept_invitation(db, principal, body.token, ip)
