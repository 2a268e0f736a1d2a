"""Shapes of leads: what the widget sends, what the dashboard lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LeadIn(BaseModel):
    """A visitor's e-mail with their consent; `consent` must be true."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(max_length=320, pattern=r"^[^@\s<>\"]{1,64}@[^@\s<>\"]+\.[^@\s<>\"]+$")
    name: str = Field(default="", max_length=200)
    consent: Literal[True]
    visitor_id: str = Field(min_length=8, max_length=64)
    visitor_sig: str | None = Field(default=None, max_length=128)
    session_id: uuid.UUID | None = None


class LeadOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    visitor_id: str
    session_id: uuid.UUID | None
    consent_text: str
    consented_at: datetime
