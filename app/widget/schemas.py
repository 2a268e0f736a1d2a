"""Shapes of embed tokens and the widget's public configuration."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_signed_visitor: bool = False


class TokenOut(BaseModel):
    """A token as listed: never the token itself, only its first characters."""

    id: uuid.UUID
    site_id: uuid.UUID
    token_prefix: str
    signed_visitors: bool
    created_at: datetime
    revoked_at: datetime | None


class TokenIssued(TokenOut):
    """Returned once, at creation or rotation: the embed token (and the identity secret
    with which the site's backend signs visitor ids, if required)."""

    token: str
    identity_secret: str | None


class WidgetConfig(BaseModel):
    """What the widget shows before the first message."""

    site_name: str
    language: str
    signed_visitors: bool
    consent_text: str
