"""Shapes of tenant, member and invitation data on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.core.plans import Feature, Plan
from app.core.roles import Role

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    plan: Plan
    features: list[Feature]
    site_limit: int
    created_at: datetime


class TenantUpdate(_In):
    name: str = Field(min_length=1, max_length=200)


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    joined_at: datetime


class RoleChange(_In):
    role: Role


class InvitationCreate(_In):
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN)
    role: Role = Role.MEMBER


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None


class InvitationCreated(InvitationOut):
    token: str = Field(description="Shown once: give it to the invitee, who accepts it signed in.")


class InvitationAccept(_In):
    token: str = Field(min_length=1, max_length=512)
