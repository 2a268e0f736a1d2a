"""A stand-in for Hetzner Object Storage: moto's S3 behind gunicorn with TLS, on loopback.

pgBackRest speaks S3 over HTTPS only, so the stand-in serves a certificate generated at start
(its CA file is handed to clients). Region `hel1`, path-style addressing, as Hetzner's.
gunicorn runs one worker (moto keeps its buckets in that process's memory).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REGION = "hel1"


def wsgi_app() -> object:
    """gunicorn's entry point: `infra.standins.s3:wsgi_app()`."""
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 (only in gunicorn)
        DomainDispatcherApplication,
        create_backend_app,
    )

    return DomainDispatcherApplication(create_backend_app)


@dataclass(frozen=True)
class S3StandIn:
    endpoint: str
    region: str
    ca_file: Path
    access_key: str
    secret_key: str


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def write_certificate(directory: Path, *names: str) -> tuple[Path, Path]:
    """A self-signed certificate for `names` (default 127.0.0.1; it is its own CA); returns
    (cert, key) files. The lab adds the name hosts reach it by (hel1.your-objectstorage.com)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloop S3 stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names or ["127.0.0.1"]]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = directory / "s3.crt", directory / "s3.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def _wait_for_tls(port: int, ca_file: Path, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 stand-in exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1"):  # fmt: skip
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the S3 stand-in did not answer within 30 s")


# Requests naming Hetzner's endpoint (the lab's hosts) are path-style, as at Hetzner.
ENV = os.environ | {
    "MOTO_ALLOW_NONEXISTENT_REGION": "true",
    "MOTO_S3_CUSTOM_ENDPOINTS": "https://hel1.your-objectstorage.com",
}


def gunicorn_command(bind: str, cert: Path, key: Path) -> list[str]:
    """The stand-in's server: here per test, or long-lived in the lab (infra/lab/standins.py)."""
    return [
        sys.executable, "-m", "gunicorn", "--bind", bind,
        "--workers", "1", "--threads", "8", "--certfile", str(cert), "--keyfile", str(key),
        "--log-level", "warning", "infra.standins.s3:wsgi_app()",
    ]  # fmt: skip


@contextmanager
def running(access_key: str, secret_key: str) -> Iterator[S3StandIn]:
    """Start gunicorn on an ephemeral loopback port; stop it (only it) on exit."""
    with tempfile.TemporaryDirectory(prefix="cloop-s3-") as tmp:
        cert, key = write_certificate(Path(tmp))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        port = sock.getsockname()[1]
        command = gunicorn_command(f"fd://{sock.fileno()}", cert, key)
        process = subprocess.Popen(command, pass_fds=[sock.fileno()], env=ENV)
        sock.close()
        try:
            _wait_for_tls(port, cert, process)
            yield S3StandIn(f"https://127.0.0.1:{port}", REGION, cert, access_key, secret_key)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
