"""Originals of uploaded files in the Helsinki object storage (S3 API through boto3), each
under its tenant's prefix `tenants/<tenant_id>/` (RES-3)."""

from __future__ import annotations

import uuid
from functools import cached_property
from typing import Any

import anyio.to_thread
import boto3
from botocore.config import Config
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.tenancy import TenantId


class StorageSettings(BaseSettings):
    """Object storage settings (prefix ``CLOOP_S3_``); Hetzner's hel1 endpoint by default."""

    model_config = SettingsConfigDict(env_prefix="CLOOP_S3_", frozen=True)

    endpoint_url: str = "https://hel1.your-objectstorage.com"
    region: str = "hel1"
    bucket: str = "cloop-uploads"
    access_key: SecretStr = SecretStr("")
    secret_key: SecretStr = SecretStr("")


def tenant_prefix(tenant_id: TenantId) -> str:
    """Every object of a tenant lives below this prefix (erasure deletes it whole)."""
    return f"tenants/{tenant_id}/"


def upload_key(tenant_id: TenantId, document_id: uuid.UUID) -> str:
    return f"{tenant_prefix(tenant_id)}uploads/{document_id}"


class ObjectStore:
    """Put, read and delete objects; boto3 is blocking, so calls run in worker threads."""

    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings

    @cached_property
    def _client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self._settings.endpoint_url,
            region_name=self._settings.region,
            aws_access_key_id=self._settings.access_key.get_secret_value(),
            aws_secret_access_key=self._settings.secret_key.get_secret_value(),
            # Hetzner's S3 rejects the newer default checksums (architecture notes).
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store one object; S3 writes whole objects, so a failure leaves none."""
        await anyio.to_thread.run_sync(
            lambda: self._client.put_object(
                Bucket=self._settings.bucket, Key=key, Body=data, ContentType=content_type
            )
        )

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(
            lambda: self._client.delete_object(Bucket=self._settings.bucket, Key=key)
        )

    async def keys(self, prefix: str) -> list[str]:
        """Every key below `prefix`."""

        def listing() -> list[str]:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._settings.bucket, Prefix=prefix
            )
            return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

        return await anyio.to_thread.run_sync(listing)

    async def delete_tenant(self, tenant_id: TenantId) -> int:
        """Delete every object of a tenant (erasure); returns how many were deleted."""
        keys = await self.keys(tenant_prefix(tenant_id))
        for key in keys:
            await self.delete(key)
        return len(keys)
