"""The residency guard: nothing is created outside Hetzner Helsinki (claims RES-1, RES-3).

It reads only the planned resources, so it runs before any API call: a wrong location in the
inventory is refused without a single request leaving the operator's machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from infra.inventory import ObjectStorage
from infra.provision.desired import Desired

ALLOWED_LOCATION = "hel1"
ALLOWED_ZONE = "eu-central"
OBJECT_STORAGE_HOST = "hel1.your-objectstorage.com"


@dataclass(frozen=True)
class Place:
    city: str
    country: str
    network_zone: str


# Hetzner's locations; anything not listed is unknown and refused as well.
LOCATIONS = {
    "hel1": Place("Helsinki", "FI", "eu-central"),
    "fsn1": Place("Falkenstein", "DE", "eu-central"),
    "nbg1": Place("Nuremberg", "DE", "eu-central"),
    "ash": Place("Ashburn, VA", "US", "us-east"),
    "hil": Place("Hillsboro, OR", "US", "us-west"),
    "sin": Place("Singapore", "SG", "ap-southeast"),
}


class ResidencyError(Exception):
    """A resource would be created outside Helsinki; the message names it."""


def _refuse_location(what: str, location: str) -> None:
    place = LOCATIONS.get(location)
    if place is None:
        raise ResidencyError(
            f"{what}: unknown location {location!r}; only {ALLOWED_LOCATION} (Helsinki) is allowed"
        )
    raise ResidencyError(
        f"{what}: location {location} ({place.city}, {place.country}) is outside "
        f"{ALLOWED_LOCATION} (Helsinki, FI); refused before any API call"
    )


def check_resources(resources: list[Desired]) -> None:
    """Refuse the first resource placed anywhere but hel1 / eu-central."""
    for res in resources:
        what = f"{res.kind.replace('_', ' ')} {res.name}"
        if res.location is not None and res.location != ALLOWED_LOCATION:
            _refuse_location(what, res.location)
        zone = res.spec.get("network_zone")
        if zone is not None and zone != ALLOWED_ZONE:
            raise ResidencyError(
                f"{what}: network zone {zone!r} is not {ALLOWED_ZONE} (where hel1 is); refused"
            )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_object_storage(storage: ObjectStorage) -> None:
    """The S3 endpoint must be Hetzner's Helsinki one (or a stand-in on this very machine)
    and the region `hel1`: a bucket elsewhere is refused before any request."""
    url = urlsplit(storage.endpoint)
    host = url.hostname or ""
    if storage.region != ALLOWED_LOCATION:
        raise ResidencyError(
            f"object storage: region {storage.region!r} is not {ALLOWED_LOCATION}; refused"
        )
    if url.scheme != "https":
        raise ResidencyError(f"object storage: endpoint {storage.endpoint} is not HTTPS; refused")
    if host != OBJECT_STORAGE_HOST and not _is_loopback(host):
        raise ResidencyError(
            f"object storage: endpoint {host or storage.endpoint!r} is not "
            f"{OBJECT_STORAGE_HOST} (Helsinki); refused"
        )
