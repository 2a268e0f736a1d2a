"""Rules for users: sign-in flows find or create them; a user edits their own profile."""

from __future__ import annotations

import uuid

from app.audit.service import record_member_action
from app.core.db import Connection
from app.core.problems import ApiError
from app.core.security import Principal
from app.users import repository
from app.users.schemas import MembershipOut, MeOut


async def ensure_user(conn: Connection, email: str, display_name: str = "") -> uuid.UUID:
    """The user with this (IdP-verified) e-mail address, created on first sign-in."""
    found = await repository.find_by_email(conn, email)
    if found is not None:
        user_id: uuid.UUID = found["id"]
        return user_id
    return await repository.insert(conn, email.strip(), display_name.strip()[:200])


async def me(conn: Connection, principal: Principal) -> MeOut:
    user = await repository.get(conn, principal.user_id)
    if user is None:
        raise ApiError(404, "This account no longer exists.")
    rows = await repository.memberships(conn, principal.user_id)
    return MeOut(
        id=user["id"],
        email=user["email"],
        display_name=user["display_name"],
        tenant_id=principal.tenant_id,
        role=principal.role,
        memberships=[MembershipOut.model_validate(row) for row in rows],
    )


async def update_profile(conn: Connection, principal: Principal, display_name: str) -> MeOut:
    """Rectification (GDPR-16): the change is audited, without the values themselves."""
    await repository.update_display_name(conn, principal.user_id, display_name)
    await record_member_action(conn, principal, "profile.updated", {"changed": ["display_name"]})
    return await me(conn, principal)
