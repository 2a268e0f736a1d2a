"""The lab's stand-ins for what production reaches on the Internet: Hetzner Object Storage (S3)
and Let's Encrypt (Debian's pebble). Both run on the operator's loopback, long-lived like the
mirror; hosts reach them through the slirp gateway under their real names.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from infra import inventory
from infra.lab import machine
from infra.lab.paths import STATE_DIR
from infra.provision.buckets import Credentials, ensure_buckets
from infra.standins import s3


@dataclass(frozen=True)
class Endpoint:
    port: int
    ca_file: Path


def start_s3(inv: inventory.Inventory, creds: Credentials) -> Endpoint:
    """moto's S3 with a certificate for the real endpoint's name, and the inventory's buckets."""
    workdir = STATE_DIR / "s3"
    workdir.mkdir(exist_ok=True)
    storage = inv.data.object_storage
    cert, key = s3.write_certificate(workdir, "127.0.0.1", storage.host, machine.SLIRP_GATEWAY)
    port = machine.free_port()
    machine.spawn(
        s3.gunicorn_command(f"127.0.0.1:{port}", cert, key),
        STATE_DIR / "s3.log", "s3 lab", env=s3.ENV,
    )  # fmt: skip
    machine.wait_for(lambda: machine.port_open(port), 30, "the S3 stand-in did not start")
    local = storage.model_copy(update={"endpoint": f"https://127.0.0.1:{port}"})
    ensure_buckets(local, inv.env.prefix, creds, ca_file=str(cert))
    return Endpoint(port, cert)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _acme_api_tls(workdir: Path) -> tuple[Path, Path, Path]:
    """Pebble ships no certificate for its API: a throw-away CA and a leaf for the gateway."""
    ca, cert, key = workdir / "ca.pem", workdir / "api.pem", workdir / "api.key"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "7"]
    _openssl("req", "-x509", *ec, "-subj", "/CN=lab acme api ca",
             "-keyout", str(workdir / "ca.key"), "-out", str(ca))  # fmt: skip
    _openssl("req", "-x509", *ec, "-subj", f"/CN={machine.SLIRP_GATEWAY}", "-CA", str(ca),
             "-CAkey", str(workdir / "ca.key"),
             "-addext", f"subjectAltName=IP:127.0.0.1,IP:{machine.SLIRP_GATEWAY}",
             "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return ca, cert, key


def start_acme(http_port: int) -> Endpoint:
    """pebble validating HTTP-01 on `http_port` (forwarded to the edge's port 80); every name
    resolves to loopback through pebble-challtestsrv's DNS."""
    workdir = STATE_DIR / "acme"
    workdir.mkdir(exist_ok=True)
    ca, cert, key = _acme_api_tls(workdir)
    api, management, dns, dns_admin, tls = (machine.free_port() for _ in range(5))
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{api}",
            "managementListenAddress": f"127.0.0.1:{management}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": http_port,
            "tlsPort": tls,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (workdir / "pebble.json").write_text(json.dumps(config))
    machine.spawn(
        ["pebble-challtestsrv", "-http01", "", "-https01", "", "-tlsalpn01", "",
         "-dns01", f"127.0.0.1:{dns}", "-management", f"127.0.0.1:{dns_admin}",
         "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
        STATE_DIR / "challtestsrv.log", "challtestsrv lab",
    )  # fmt: skip
    machine.spawn(
        ["pebble", "-config", str(workdir / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"],
        STATE_DIR / "pebble.log", "pebble lab",
        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    for port in (api, management):
        machine.wait_for(lambda p=port: machine.port_open(p), 15, "pebble did not start")
    return Endpoint(api, ca)


def acme_directory(endpoint: Endpoint) -> str:
    return f"https://{machine.SLIRP_GATEWAY}:{endpoint.port}/dir"


def s3_endpoint(inv: inventory.Inventory, endpoint: Endpoint) -> str:
    return f"https://{urlsplit(inv.data.object_storage.endpoint).hostname}:{endpoint.port}"
