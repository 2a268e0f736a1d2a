"""Application settings, read from the environment (prefix ``CLOOP_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything that differs between the laptop, the lab and production."""

    model_config = SettingsConfigDict(env_prefix="CLOOP_", frozen=True)

    database_url: str = "postgresql://cloop_app@/cloop"
    owner_database_url: str = "postgresql://cloop_owner@/cloop"
    pool_min_size: int = 2
    pool_max_size: int = 16
    migrate_on_start: bool = True
    log_level: str = "INFO"
    # Directory of PEM private keys (EC P-256). The newest file signs; all of them verify,
    # so a key is rotated by adding a file and retired by deleting it after the token TTL.
    # Unset: one key is generated in memory at start (single-process development only).
    signing_keys_dir: Path | None = None
    jwt_issuer: str = "cloop"
    access_token_ttl_seconds: int = 600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    invitation_ttl_seconds: int = 7 * 24 * 3600
    audit_retention_days: int = 365


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
