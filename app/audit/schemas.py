"""Shapes of the audit trail on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuthEventOut(BaseModel):
    id: int
    occurred_at: datetime
    event: str
    actor: str | None
    ip: str | None
    outcome: str
    detail: dict[str, Any]


class SiteChangeOut(BaseModel):
    id: int
    site_id: uuid.UUID
    kind: str
    actor: str | None
    changed_at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
