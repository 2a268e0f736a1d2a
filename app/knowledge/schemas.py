"""Shapes of the knowledge base on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CrawlIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")


class JobOut(BaseModel):
    """An ingestion job and its progress."""

    id: uuid.UUID
    site_id: uuid.UUID
    source_id: uuid.UUID
    status: str
    pages_done: int
    pages_unchanged: int
    pages_skipped: int
    chunks_done: int
    detail: str
    created_at: datetime
    finished_at: datetime | None


class DocumentOut(BaseModel):
    id: uuid.UUID
    source_id: uuid.UUID
    kind: str
    url: str
    title: str
    content_type: str | None
    byte_size: int | None
    chunks: int
    updated_at: datetime


class UploadOut(BaseModel):
    document_id: uuid.UUID
    job: JobOut
