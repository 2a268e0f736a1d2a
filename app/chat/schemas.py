"""Shapes of a visitor's chat message on the wire (the answer streams back as SSE)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    message: str = Field(min_length=1, max_length=2000)
    visitor_id: str = Field(min_length=8, max_length=64)
    visitor_sig: str | None = Field(default=None, max_length=128)
    session_id: uuid.UUID | None = None


class Source(BaseModel):
    """A knowledge-base document an answer drew on, as the widget lists it."""

    title: str
    url: str
