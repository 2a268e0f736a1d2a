"""Object-storage buckets in Helsinki through the S3 API (claim RES-3).

Hetzner's Cloud API manages no buckets, so boto3 creates them on Hetzner Object Storage
(`hel1`): private (public access blocked, private ACL), versioned, and with lifecycle rules
that keep the 30-day erasure promise. Each setting is read first and only written when it
differs, so a second run changes nothing and a setting changed by hand is put back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.inventory import Bucket, ObjectStorage
from infra.provision.engine import ProvisionError
from infra.provision.guard import ALLOWED_LOCATION, ResidencyError, check_object_storage

PUBLIC_GROUPS = ("/global/AllUsers", "/global/AuthenticatedUsers")
PRIVATE = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


def credentials_from_env() -> Credentials:
    access, secret = os.environ.get("S3_ACCESS_KEY", ""), os.environ.get("S3_SECRET_KEY", "")
    if not access or not secret:
        raise ProvisionError(
            "S3_ACCESS_KEY and S3_SECRET_KEY must be set (Hetzner console: Object Storage > "
            "S3 credentials)"
        )
    return Credentials(access, secret)


def s3_client(storage: ObjectStorage, creds: Credentials, ca_file: str | None = None) -> Any:
    """boto3 configured for Hetzner: path style, checksums only when required (boto3 >= 1.36)."""
    config = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=storage.endpoint,
        region_name=storage.region,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        config=config,
        verify=ca_file if ca_file else True,
    )


def lifecycle_rules(bucket: Bucket, noncurrent_days: int) -> list[dict[str, Any]]:
    """Deleted or overwritten versions go after `noncurrent_days`; current objects after the
    bucket's `expire_days` if set; unfinished uploads after a day."""
    rules: list[dict[str, Any]] = [
        {
            "ID": "erase-noncurrent-versions",
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    ]
    if bucket.expire_days is not None:
        rules.append({"ID": "expire-objects", "Filter": {"Prefix": ""}, "Status": "Enabled",
                      "Expiration": {"Days": bucket.expire_days}})  # fmt: skip
    return rules


def _missing(call: Callable[[], Any], *codes: str) -> Any:
    """The result of a read, or None when S3 says the setting does not exist yet."""
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in codes:
            return None
        raise


def _region_of(s3: BaseClient, name: str) -> str | None:
    """The bucket's region, or None if there is no such bucket."""
    found = _missing(lambda: s3.get_bucket_location(Bucket=name), "NoSuchBucket", "404")
    if found is None:
        return None
    return found.get("LocationConstraint") or "us-east-1"


def _settings(s3: BaseClient, name: str) -> dict[str, Any]:
    """The bucket's settings that we manage, as S3 reports them."""
    access = _missing(lambda: s3.get_public_access_block(Bucket=name),
                      "NoSuchPublicAccessBlockConfiguration")  # fmt: skip
    lifecycle = _missing(lambda: s3.get_bucket_lifecycle_configuration(Bucket=name),
                         "NoSuchLifecycleConfiguration")  # fmt: skip
    grants = s3.get_bucket_acl(Bucket=name)["Grants"]
    return {
        "public access block": access and access["PublicAccessBlockConfiguration"],
        "private acl": not any(g["Grantee"].get("URI", "").endswith(PUBLIC_GROUPS) for g in grants),
        "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
        "lifecycle": lifecycle and _comparable(lifecycle["Rules"]),
    }


def _comparable(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("ID", "Status", "Expiration", "NoncurrentVersionExpiration",
            "AbortIncompleteMultipartUpload")  # fmt: skip
    return sorted(({k: r[k] for k in keys if k in r} for r in rules), key=lambda r: r["ID"])


def _write(s3: BaseClient, name: str, key: str, rules: list[dict[str, Any]]) -> None:
    if key == "public access block":
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=PRIVATE)
    elif key == "private acl":
        s3.put_bucket_acl(Bucket=name, ACL="private")
    elif key == "versioning":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    else:
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})


def _ensure(s3: BaseClient, name: str, bucket: Bucket, noncurrent: int, dry_run: bool) -> str:
    region = _region_of(s3, name)
    if region is not None and region != ALLOWED_LOCATION:
        raise ResidencyError(f"bucket {name} exists in region {region}, not {ALLOWED_LOCATION}")
    rules = lifecycle_rules(bucket, noncurrent)
    want = {"public access block": PRIVATE, "private acl": True, "versioning": "Enabled",
            "lifecycle": _comparable(rules)}  # fmt: skip
    if region is None:
        if not dry_run:
            where = {"LocationConstraint": ALLOWED_LOCATION}
            s3.create_bucket(Bucket=name, ACL="private", CreateBucketConfiguration=where)
            for key in want:
                _write(s3, name, key, rules)
        return f"  create    bucket {name} ({bucket.purpose})"
    seen = _settings(s3, name)
    drift = [k for k in want if seen[k] != want[k]]
    if not dry_run:
        for key in drift:
            _write(s3, name, key, rules)
    return (
        f"  update    bucket {name} ({', '.join(drift)})" if drift else f"  unchanged bucket {name}"
    )


def ensure_buckets(
    storage: ObjectStorage,
    prefix: str,
    creds: Credentials,
    *,
    dry_run: bool = False,
    ca_file: str | None = None,
) -> list[str]:
    """Create or correct every bucket of the inventory; returns one line per bucket."""
    check_object_storage(storage)
    s3 = s3_client(storage, creds, ca_file)
    lines = [f"Buckets at {storage.endpoint} (region {storage.region}):"]
    for key, bucket in storage.buckets.items():
        name = f"{prefix}-{key}"
        try:
            lines.append(_ensure(s3, name, bucket, storage.noncurrent_expire_days, dry_run))
        except (ClientError, BotoCoreError) as exc:
            raise ProvisionError(f"bucket {name}: {exc}") from None
    return lines
