"""Fixtures for provisioning tests: a fresh Hetzner API stand-in, a generated SSH key and
inventories pointing at it. Nothing is written into the repository."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hcloud import Client

from infra import inventory
from infra.standins import s3
from infra.standins.hetzner import HetznerState, running


@dataclass
class Hetzner:
    """A running stand-in: its URL, token, state (requests seen, resources) and a client."""

    endpoint: str
    token: str
    state: HetznerState

    def client(self) -> Client:
        return Client(self.token, api_endpoint=self.endpoint, poll_interval=0.01)

    def writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.state.requests if r.method != "GET"]


@pytest.fixture
def hetzner() -> Iterator[Hetzner]:
    token = secrets.token_urlsafe(32)
    with running(token) as (endpoint, state):
        yield Hetzner(endpoint, token, state)


@pytest.fixture(scope="session")
def ssh_public_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = Ed25519PrivateKey.generate().public_key()
    path = tmp_path_factory.mktemp("ssh") / "operator.pub"
    path.write_bytes(key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH) + b" operator\n")
    return path


@pytest.fixture
def production(ssh_public_key: Path) -> inventory.Inventory:
    """The production inventory with this run's operator key."""
    return inventory.load("production").with_data(ssh_keys={"operator": str(ssh_public_key)})


@pytest.fixture(scope="session")
def s3_standin() -> Iterator[s3.S3StandIn]:
    """One S3 stand-in (gunicorn + TLS) for the session; tests use their own bucket prefix."""
    with s3.running(secrets.token_hex(10), secrets.token_urlsafe(30)) as standin:
        yield standin
