"""Bodies and answers of the privacy endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_VISITOR_ID = r"^[A-Za-z0-9_.:-]+$"


class Right(StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"


class RestrictionKind(StrEnum):
    RESTRICTION = "restriction"
    OBJECTION = "objection"


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErasureOut(_Row):
    """An accepted erasure: the subject is deactivated; the purge is due by ``due_at``."""

    subject_kind: str
    subject_pseudonym: str
    requested_at: datetime
    due_at: datetime


class TenantErasure(BaseModel):
    confirm_tenant_id: uuid.UUID = Field(description="The tenant's id, typed again to confirm.")


class VisitorRef(BaseModel):
    """A visitor named by the id their widget keeps, or by the e-mail they left."""

    visitor_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=_VISITOR_ID)
    email: str | None = Field(
        default=None, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> VisitorRef:
        if (self.visitor_id is None) == (self.email is None):
            raise ValueError("give exactly one of visitor_id or email")
        return self


class VisitorErased(BaseModel):
    rows_removed: dict[str, int]


class RestrictionIn(BaseModel):
    kind: RestrictionKind
    visitor_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=_VISITOR_ID,
        description="Omit for the whole tenant.",
    )


class RestrictionOut(_Row):
    visitor_id: str | None
    kind: RestrictionKind
    created_at: datetime


class RequestIn(BaseModel):
    """A request that reached the tenant outside the API (mail, phone, letter)."""

    subject_kind: Literal["account", "tenant", "visitor"]
    subject_ref: str = Field(min_length=1, max_length=320)
    right: Right
    received_at: datetime | None = None


class RequestExtension(BaseModel):
    notice: str = Field(min_length=1, max_length=2000, description="What the subject was told.")


class RequestClose(BaseModel):
    status: Literal["completed", "refused"]


class RequestOut(_Row):
    id: uuid.UUID
    subject_kind: str
    subject_ref: str
    right_invoked: Right
    received_at: datetime
    due_at: datetime
    extended_at: datetime | None
    extension_notice: str | None
    status: str
    closed_at: datetime | None


class RetentionIn(BaseModel):
    conversation_retention_months: int = Field(ge=1, le=120)


class RetentionOut(BaseModel):
    conversation_retention_months: int
