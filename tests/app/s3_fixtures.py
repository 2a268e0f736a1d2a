"""An S3 stand-in for app tests: moto's server on a loopback ephemeral port, spoken to through
boto3 exactly as the app speaks to Hetzner's object storage in Helsinki."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from app.knowledge.storage import StorageSettings


@pytest.fixture(scope="module")
def s3_settings() -> Iterator[StorageSettings]:
    """A moto S3 server with an empty upload bucket in hel1."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings = StorageSettings(
        endpoint_url=f"http://{host}:{port}",
        region="hel1",
        bucket=f"uploads-{uuid.uuid4().hex[:8]}",
        access_key=SecretStr("testing"),
        secret_key=SecretStr("testing"),
    )
    s3_client(settings).create_bucket(
        Bucket=settings.bucket, CreateBucketConfiguration={"LocationConstraint": "hel1"}
    )
    yield settings
    server.stop()


def s3_client(settings: StorageSettings) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key.get_secret_value(),
        aws_secret_access_key=settings.secret_key.get_secret_value(),
    )


def object_keys(settings: StorageSettings, prefix: str = "") -> list[str]:
    listing = s3_client(settings).list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    return [obj["Key"] for obj in listing.get("Contents", [])]
