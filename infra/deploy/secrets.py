"""Secrets the deploy generates (database passwords, the backup passphrase).

Created once per environment on the operator's machine, in a 0600 file outside the repository
(`CLOOP_SECRETS_DIR`, default ~/.config/cloop/secrets), and re-used by every later deploy.
Keep a copy of that file somewhere safe: without the passphrase, backups cannot be restored.
Hosts receive only what they need; database hosts receive SCRAM verifiers, never passwords.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

SCRAM_ITERATIONS = 4096


def secrets_dir() -> Path:
    return Path(os.environ.get("CLOOP_SECRETS_DIR", "~/.config/cloop/secrets")).expanduser()


def random_token() -> str:
    return secrets.token_urlsafe(48)


def secret(
    environment: str,
    name: str,
    directory: Path | None = None,
    generate: Callable[[], str] = random_token,
) -> str:
    """The secret `name` of `environment`, generated on first use (48 random bytes unless
    `generate` says otherwise)."""
    folder = directory or secrets_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{environment}.json"
    with (folder / f".{environment}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel pyinfra hosts share one store
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if name not in stored:
            stored[name] = generate()
            fresh = path.with_suffix(".tmp")
            fresh.touch(mode=0o600)
            fresh.write_text(json.dumps(stored, indent=1, sort_keys=True))
            fresh.replace(path)
        return stored[name]


def scram_verifier(password: str, role: str) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier: the server can check a password but not recover it.

    The salt is derived from password and role, so a re-deploy renders the same file.
    """
    salt = hashlib.sha256(f"{role}\0{password}".encode()).digest()[:16]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def signing_key_pem() -> str:
    """An EC P-256 private key (PEM) for the app's tokens, shared by every app host."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
