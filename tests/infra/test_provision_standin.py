"""The Hetzner API stand-in speaks the real API's shapes: pagination, errors, protection,
label selectors, and drives its server backend."""

from __future__ import annotations

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hcloud import APIException
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType

from infra.standins.backends import RecordingBackend
from infra.standins.hetzner import matches
from tests.infra.conftest import Hetzner


def public_key() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def get(hetzner: Hetzner, path: str, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {hetzner.token}"}
    return requests.get(f"{hetzner.endpoint}{path}", headers=headers, params=params, timeout=10)


def test_lists_are_paginated_and_the_client_reads_every_page(hetzner: Hetzner) -> None:
    client = hetzner.client()
    for i in range(60):
        client.ssh_keys.create(name=f"key-{i}", public_key=public_key())
    assert len(client.ssh_keys.get_all()) == 60
    page = get(hetzner, "/ssh_keys", page="3", per_page="25").json()
    assert len(page["ssh_keys"]) == 10
    assert page["meta"]["pagination"] == {
        "page": 3, "per_page": 25, "previous_page": 2, "next_page": None,
        "last_page": 3, "total_entries": 60,
    }  # fmt: skip


def test_errors_use_the_api_envelope(hetzner: Hetzner) -> None:
    missing = get(hetzner, "/servers/999")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert int(missing.headers["RateLimit-Remaining"]) < int(missing.headers["RateLimit-Limit"])
    client = hetzner.client()
    key = public_key()
    client.ssh_keys.create(name="dup", public_key=key)
    with pytest.raises(APIException) as duplicate:
        client.ssh_keys.create(name="dup", public_key=key)
    assert duplicate.value.code == "uniqueness_error"
    with pytest.raises(APIException) as bad:
        client.ssh_keys.create(name="bad", public_key="ssh-ed25519 not-base64!")
    assert bad.value.code == "invalid_input"
    assert get(hetzner, "/servers", page="1").status_code == 200
    unauthorised = requests.get(f"{hetzner.endpoint}/servers", timeout=10)
    assert unauthorised.status_code == 401
    assert unauthorised.json()["error"]["code"] == "unauthorized"


def test_server_lifecycle_reaches_the_backend_and_protection_holds(hetzner: Hetzner) -> None:
    client = hetzner.client()
    made = client.servers.create(
        "box", server_type=ServerType(name="cx23"), image=Image(name="debian-13"),
        location=Location(name="hel1"), labels={"role": "db"},
    )  # fmt: skip
    server = made.server
    assert server.public_net.ipv4.ip == "203.0.113.1"
    server.change_protection(delete=True, rebuild=True).wait_until_finished()
    with pytest.raises(APIException) as protected:
        server.delete()
    assert protected.value.code == "protected"
    server.power_off().wait_until_finished()
    server.enable_rescue().action.wait_until_finished()
    server.reset().wait_until_finished()
    server.change_protection(delete=False, rebuild=False).wait_until_finished()
    server.rebuild(Image(name="debian-12")).action.wait_until_finished()
    server.delete().wait_until_finished()
    backend = hetzner.state.backend
    assert isinstance(backend, RecordingBackend)
    assert [c[0] for c in backend.calls] == [
        "create_server", "power_off", "enable_rescue", "reset", "rebuild", "delete_server",
    ]  # fmt: skip
    assert client.servers.get_all() == []


@pytest.mark.parametrize(
    ("selector", "expected"),
    [("env=prod", True), ("env==prod,role", True), ("env!=prod", False), ("!role", False),
     ("role-db", False), ("env=prod,role=edge", False)],
)  # fmt: skip
def test_label_selectors(selector: str, expected: bool) -> None:
    assert matches({"env": "prod", "role": "db"}, selector) is expected
