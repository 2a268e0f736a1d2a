"""Shapes of user data on the wire."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from app.core.plans import Plan
from app.core.roles import Role


class MembershipOut(BaseModel):
    tenant_id: uuid.UUID
    tenant_name: str
    plan: Plan
    role: Role


class MeOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    tenant_id: uuid.UUID
    role: Role
    memberships: list[MembershipOut]


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    display_name: str = Field(max_length=200)
