"""Shapes of site settings on the wire, with the rules each field must meet."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:]+")
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


def _origin(value: str) -> str:
    """A browser origin, normalised: scheme://host[:port], https except on localhost."""
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number") from None
    host = parts.hostname
    if parts.scheme not in {"https", "http"} or not host or not _HOST.fullmatch(host):
        raise ValueError("an origin looks like https://www.example.com")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise ValueError("an origin has no path, query, fragment or user")
    if parts.scheme == "http" and host not in _LOCAL_HOSTS:
        raise ValueError("origins use https (http only for localhost)")
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port else "")


Origin = Annotated[str, Field(max_length=300), AfterValidator(_origin)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Persona = Annotated[str, Field(max_length=4000)]
Language = Annotated[str, Field(max_length=35, pattern=LANGUAGE_PATTERN)]
Phase = Annotated[str, Field(max_length=200)]
Origins = Annotated[list[Origin], Field(max_length=20)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SiteCreate(_In):
    name: Name
    allowed_origins: Origins = []
    persona: Persona = ""
    language: Language = "en"
    phase: Phase = ""


class SiteUpdate(_In):
    """Only the fields sent change."""

    name: Name | None = None
    allowed_origins: Origins | None = None
    persona: Persona | None = None
    language: Language | None = None
    phase: Phase | None = None


class SiteOut(BaseModel):
    id: uuid.UUID
    name: str
    allowed_origins: list[str]
    persona: str
    language: str
    phase: str
    created_at: datetime
    updated_at: datetime
