"""Rules for tenants: creation, plan, members and their roles, invitations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.audit.service import SUCCESS, record_auth_event, record_member_action
from app.core import session_repository
from app.core.db import Database, TenantConnection
from app.core.plans import PLAN_FEATURES, SITE_LIMITS, Plan
from app.core.problems import ApiError
from app.core.roles import Permission, Role, allows
from app.core.security import (
    Principal,
    TokenPair,
    new_scoped_token,
    start_session,
    tenant_of_token,
    token_hash,
)
from app.core.tenancy import TenantId, new_tenant_id
from app.tenants import repository
from app.tenants.schemas import InvitationCreated, InvitationOut, MemberOut, TenantOut
from app.users import repository as users


async def create_tenant(db: Database, name: str, owner: uuid.UUID) -> TenantId:
    """A new tenant (Free plan) with ``owner`` as its first Owner; used by sign-up flows."""
    tenant_id = new_tenant_id()
    async with db.tenant(tenant_id) as conn:
        await repository.insert_tenant(conn, tenant_id, name)
        await repository.insert_membership(conn, tenant_id, owner, Role.OWNER)
    return tenant_id


async def set_plan(db: Database, tenant_id: TenantId, plan: Plan) -> None:
    """Change a tenant's plan (billing / operator action, not a tenant's own API)."""
    async with db.tenant(tenant_id) as conn:
        if not await repository.set_plan(conn, tenant_id, plan):
            raise ApiError(404, f"No tenant {tenant_id}.")


async def get_tenant(conn: TenantConnection, tenant_id: TenantId) -> TenantOut:
    row = await repository.get_tenant(conn, tenant_id)
    if row is None:
        raise ApiError(404, "This tenant no longer exists.")
    plan = Plan(row["plan"])
    return TenantOut(**row, features=sorted(PLAN_FEATURES[plan]), site_limit=SITE_LIMITS[plan])


async def rename_tenant(conn: TenantConnection, principal: Principal, name: str) -> TenantOut:
    """Rectification (GDPR-16) of the tenant's settings, audited with before and after."""
    before = await get_tenant(conn, principal.tenant_id)
    await repository.rename_tenant(conn, principal.tenant_id, name)
    detail = {"before": {"name": before.name}, "after": {"name": name}}
    await record_member_action(conn, principal, "tenant.renamed", detail)
    return await get_tenant(conn, principal.tenant_id)


async def list_members(conn: TenantConnection, tenant_id: TenantId) -> list[MemberOut]:
    return [MemberOut.model_validate(r) for r in await repository.list_members(conn, tenant_id)]


def _check_can_assign(principal: Principal, *roles: str | None) -> None:
    """Only Owners make, unmake or invite Owners."""
    if Role.OWNER in roles and not allows(principal.role, Permission.OWNERS_MANAGE):
        raise ApiError(403, "Only an Owner can grant or take away the Owner role.")


async def _lock_member(conn: TenantConnection, tenant_id: TenantId, user_id: uuid.UUID) -> str:
    role = await repository.lock_membership(conn, tenant_id, user_id)
    if role is None:
        raise ApiError(404, "No such member in this tenant.")
    return role


async def _keep_an_owner(conn: TenantConnection, tenant_id: TenantId, current: str) -> None:
    if current == Role.OWNER and await repository.count_owners(conn, tenant_id) <= 1:
        raise ApiError(409, "A tenant keeps at least one Owner; make someone else Owner first.")


async def change_role(
    conn: TenantConnection,
    principal: Principal,
    user_id: uuid.UUID,
    role: Role,
    ip: str | None,
) -> MemberOut:
    tenant_id = principal.tenant_id
    current = await _lock_member(conn, tenant_id, user_id)
    _check_can_assign(principal, current, role)
    if current != role:
        await _keep_an_owner(conn, tenant_id, current)
        await repository.update_role(conn, tenant_id, user_id, role)
        await session_repository.revoke_user(conn, tenant_id, user_id)
        detail = {"user_id": str(user_id), "from": current, "to": role.value}
        await record_member_action(conn, principal, "role_change", detail, ip=ip)
    members = await list_members(conn, tenant_id)
    return next(m for m in members if m.user_id == user_id)


async def remove_member(
    conn: TenantConnection, principal: Principal, user_id: uuid.UUID, ip: str | None
) -> None:
    tenant_id = principal.tenant_id
    current = await _lock_member(conn, tenant_id, user_id)
    _check_can_assign(principal, current)
    await _keep_an_owner(conn, tenant_id, current)
    await repository.delete_membership(conn, tenant_id, user_id)
    await session_repository.revoke_user(conn, tenant_id, user_id)
    detail = {"user_id": str(user_id), "role": current}
    await record_member_action(conn, principal, "member_removed", detail, ip=ip)


async def invite(
    conn: TenantConnection,
    principal: Principal,
    *,
    email: str,
    role: Role,
    ttl_seconds: int,
    ip: str | None,
) -> InvitationCreated:
    _check_can_assign(principal, role)
    token = new_scoped_token(principal.tenant_id)
    row = await repository.insert_invitation(
        conn,
        principal.tenant_id,
        email=email,
        role=role,
        token_hash=token_hash(token),
        invited_by=principal.user_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
    )
    detail = {"email": email, "role": role.value}
    await record_member_action(conn, principal, "member_invited", detail, ip=ip)
    return InvitationCreated(**row, token=token)


async def list_invitations(conn: TenantConnection, tenant_id: TenantId) -> list[InvitationOut]:
    rows = await repository.list_invitations(conn, tenant_id)
    return [InvitationOut.model_validate(r) for r in rows]


async def revoke_invitation(
    conn: TenantConnection, tenant_id: TenantId, invitation_id: uuid.UUID
) -> None:
    if not await repository.delete_invitation(conn, tenant_id, invitation_id):
        raise ApiError(404, "No such invitation in this tenant.")


async def accept_invitation(
    db: Database, principal: Principal, token: str, ip: str | None
) -> TokenPair:
    """Join the inviting tenant; the invitation was addressed to this user's e-mail address."""
    refused = ApiError(404, "This invitation is unknown, used, expired or not addressed to you.")
    tenant_id = tenant_of_token(token)
    if tenant_id is None:
        raise refused
    async with db.tenant(tenant_id) as conn:
        user = await users.get(conn, principal.user_id)
        invitation = await repository.take_invitation(conn, tenant_id, token_hash(token))
        if (
            user is None
            or invitation is None
            or (invitation["email"].lower() != user["email"].lower())
        ):
            raise refused
        await repository.insert_membership(conn, tenant_id, principal.user_id, invitation["role"])
        await record_auth_event(
            conn,
            event="invitation_accepted",
            actor=str(principal.user_id),
            tenant_id=tenant_id,
            ip=ip,
            outcome=SUCCESS,
            detail={"invitation_id": str(invitation["id"])},
        )
    return await start_session(db, principal.user_id, tenant_id)
