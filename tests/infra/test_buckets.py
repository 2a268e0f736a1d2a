"""Object-storage buckets in hel1 through boto3 against the S3 stand-in (TLS)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from infra.inventory import InventoryError, ObjectStorage, load
from infra.provision.buckets import Credentials, ensure_buckets, s3_client
from infra.provision.guard import ResidencyError
from infra.standins.s3 import S3StandIn


@pytest.fixture
def storage(s3_standin: S3StandIn) -> ObjectStorage:
    data = load("lab").data.object_storage
    return data.model_copy(update={"endpoint": s3_standin.endpoint})


@pytest.fixture
def creds(s3_standin: S3StandIn) -> Credentials:
    return Credentials(s3_standin.access_key, s3_standin.secret_key)


@pytest.fixture
def prefix() -> str:
    return f"t{secrets.token_hex(4)}"


def ensure(storage: ObjectStorage, prefix: str, creds: Credentials, ca: S3StandIn) -> list[str]:
    return ensure_buckets(storage, prefix, creds, ca_file=str(ca.ca_file))


def client(storage: ObjectStorage, creds: Credentials, ca: S3StandIn) -> Any:
    return s3_client(storage, creds, str(ca.ca_file))


@pytest.mark.claim("RES-3")
def test_buckets_are_private_versioned_expiring_and_in_hel1(
    storage: ObjectStorage, creds: Credentials, prefix: str, s3_standin: S3StandIn
) -> None:
    lines = ensure(storage, prefix, creds, s3_standin)
    assert [line.split()[0] for line in lines[1:]] == ["create", "create"]
    s3 = client(storage, creds, s3_standin)
    for name in (f"{prefix}-backups", f"{prefix}-uploads"):
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "hel1"
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        assert len(block) == 4
        grants = s3.get_bucket_acl(Bucket=name)["Grants"]
        assert [g["Grantee"]["Type"] for g in grants] == ["CanonicalUser"]
        rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        days = [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules
                if "NoncurrentVersionExpiration" in r]  # fmt: skip
        assert days == [30]
    backups = s3.get_bucket_lifecycle_configuration(Bucket=f"{prefix}-backups")["Rules"]
    assert [r["Expiration"]["Days"] for r in backups if "Expiration" in r] == [30]

    again = ensure(storage, prefix, creds, s3_standin)
    assert [line.split()[0] for line in again[1:]] == ["unchanged", "unchanged"]


@pytest.mark.claim("RES-3")
def test_settings_changed_by_hand_are_put_back(
    storage: ObjectStorage, creds: Credentials, prefix: str, s3_standin: S3StandIn
) -> None:
    ensure(storage, prefix, creds, s3_standin)
    s3 = client(storage, creds, s3_standin)
    name = f"{prefix}-uploads"
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    s3.put_bucket_acl(Bucket=name, ACL="public-read")
    s3.delete_bucket_lifecycle(Bucket=name)

    lines = ensure(storage, prefix, creds, s3_standin)
    assert f"  update    bucket {name} (private acl, versioning, lifecycle)" in lines
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    assert all("URI" not in g["Grantee"] for g in s3.get_bucket_acl(Bucket=name)["Grants"])
    assert s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]


@pytest.mark.claim("RES-3")
@pytest.mark.parametrize(
    ("endpoint", "region", "refusal"),
    [
        ("https://fsn1.your-objectstorage.com", "hel1", "is not hel1.your-objectstorage.com"),
        ("https://s3.eu-central-1.amazonaws.com", "hel1", "is not hel1.your-objectstorage.com"),
        ("https://hel1.your-objectstorage.com", "fsn1", "region 'fsn1' is not hel1"),
        ("https://hel1.your-objectstorage.com", "eu-central-1", "region 'eu-central-1'"),
        ("http://hel1.your-objectstorage.com", "hel1", "is not HTTPS"),
    ],
)
def test_storage_outside_helsinki_is_refused(
    storage: ObjectStorage, creds: Credentials, endpoint: str, region: str, refusal: str
) -> None:
    elsewhere = storage.model_copy(update={"endpoint": endpoint, "region": region})
    with pytest.raises(ResidencyError, match=refusal):
        ensure_buckets(elsewhere, "x", creds)


@pytest.mark.claim("RES-3")
def test_a_region_other_than_hel1_is_refused_before_any_bucket_exists(
    storage: ObjectStorage, creds: Credentials, prefix: str, s3_standin: S3StandIn
) -> None:
    with pytest.raises(ResidencyError):
        ensure(storage.model_copy(update={"region": "fsn1"}), prefix, creds, s3_standin)
    names = [b["Name"] for b in client(storage, creds, s3_standin).list_buckets()["Buckets"]]
    assert not [n for n in names if n.startswith(prefix)]


def test_expiry_beyond_the_30_day_promise_is_rejected_on_load() -> None:
    data = load("lab").data.object_storage.model_dump()
    data["buckets"]["backups"]["expire_days"] = 90
    with pytest.raises(InventoryError, match=r"object_storage\.buckets\.backups\.expire_days"):
        load("lab").with_data(object_storage=data)
