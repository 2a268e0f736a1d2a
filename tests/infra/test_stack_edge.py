"""The edge's nginx template, served by a real nginx on loopback, keeps the TLS and header promises.

The same `templates/nginx/cloop.conf.j2` and `inventories/group_data/edge.py` the deploy puts on
edge hosts are rendered here, so a change that weakens them fails before it reaches a host.
"""

from __future__ import annotations

import http.client
import http.server
import json
import runpy
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.conftest import REPO

EDGE_DATA = {
    name: value
    for name, value in runpy.run_path(str(REPO / "inventories/group_data/edge.py")).items()
    if not name.startswith("_")
}
DOMAIN = EDGE_DATA["edge_domains"][0]
ONE_YEAR = 365 * 24 * 3600


def free_port() -> int:
    """An ephemeral loopback port, so parallel runs never collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def render(template: str, **values: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - configuration files, not HTML
    )
    return env.get_template(template).render(**values)


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A P-256 certificate for `name`, standing in for the one certbot fetches."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class _Upstream(http.server.BaseHTTPRequestHandler):
    """Plays an app that misbehaves: it sets a cookie and names its server."""

    def do_GET(self) -> None:
        body = b"hello from the app\n"
        self.send_response(200)
        self.send_header("Set-Cookie", "tracker=1; Path=/")
        self.send_header("X-Powered-By", "leaky/1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet: pytest shows failures, not request logs."""


@dataclass
class Edge:
    http_port: int
    https_port: int
    webroot: Path
    cert: Path
    conf: Path


def start_nginx(workdir: Path, conf_text: str) -> subprocess.Popen[bytes]:
    """A real nginx with Debian's http{} defaults plus our site, all state in `workdir`."""
    (workdir / "cloop.conf").write_text(conf_text)
    main = workdir / "nginx.conf"
    main.write_text(
        f"user root; worker_processes 1; pid {workdir}/nginx.pid; error_log {workdir}/error.log;\n"
        "events { worker_connections 256; }\n"
        "http {\n include /etc/nginx/mime.types; access_log off;\n"
        f" client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;\n"
        f" fastcgi_temp_path {workdir}/fcgi; uwsgi_temp_path {workdir}/uwsgi;\n"
        f" scgi_temp_path {workdir}/scgi;\n"
        # Debian's nginx.conf enables TLS 1.0/1.1 at http level: the site must override it.
        " ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_prefer_server_ciphers on;\n"
        f" include {workdir}/cloop.conf;\n}}\n"
    )
    test = subprocess.run(
        ["nginx", "-t", "-c", str(main)], capture_output=True, text=True, check=False
    )
    assert test.returncode == 0, test.stderr
    return subprocess.Popen(["nginx", "-c", str(main), "-g", "daemon off;"])


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    workdir = tmp_path_factory.mktemp("edge")
    cert, key = self_signed(workdir, DOMAIN)
    webroot = workdir / "acme"
    (webroot / ".well-known/acme-challenge").mkdir(parents=True)
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    conf = render(
        "nginx/cloop.conf.j2",
        **{
            **EDGE_DATA,
            "app_upstreams": [f"127.0.0.1:{upstream.server_address[1]}"],
            "http_listen": f"127.0.0.1:{http_port}",
            "https_listen": f"127.0.0.1:{https_port}",
            "tls_certificate": cert,
            "tls_certificate_key": key,
            "acme_webroot": webroot,
        },
    )
    nginx = start_nginx(workdir, conf)
    try:
        wait_for_port(http_port)
        wait_for_port(https_port)
        yield Edge(http_port, https_port, webroot, cert, workdir / "cloop.conf")
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()


def client_context(
    edge: Edge, version: ssl.TLSVersion, ciphers: str = "DEFAULT:@SECLEVEL=0"
) -> ssl.SSLContext:
    """A client pinned to one protocol version that is itself willing to speak old TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(edge.cert)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers(ciphers)
    return ctx


def handshake(edge: Edge, ctx: ssl.SSLContext) -> str:
    with (
        socket.create_connection(("127.0.0.1", edge.https_port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        return str(tls.version())


class _EdgeConnection(http.client.HTTPConnection):
    """HTTPS to the loopback address, verified and SNI'd as the public name."""

    def __init__(self, edge: Edge) -> None:
        super().__init__("127.0.0.1", edge.https_port, timeout=5)
        self.tls = client_context(edge, ssl.TLSVersion.TLSv1_3)

    def connect(self) -> None:
        super().connect()
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=DOMAIN)


def https_get(edge: Edge, path: str) -> http.client.HTTPResponse:
    conn = _EdgeConnection(edge)
    conn.request("GET", path, headers={"Host": DOMAIN})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def http_request(edge: Edge, method: str, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", edge.http_port, timeout=5)
    conn.request(method, path, headers={"Host": DOMAIN})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.mark.claim("ENC-1")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_modern_tls_versions_are_accepted(edge: Edge, version: ssl.TLSVersion) -> None:
    assert handshake(edge, client_context(edge, version)) == version.name.replace("_", ".")


@pytest.mark.claim("ENC-1")
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused_by_the_server(edge: Edge, version: ssl.TLSVersion) -> None:
    """The client offers the old version in earnest; the refusal must come from the server."""
    with pytest.raises(ssl.SSLError) as refused:
        handshake(edge, client_context(edge, version))
    assert "ALERT" in str(refused.value), f"refused by the client, not the server: {refused.value}"


@pytest.mark.claim("ENC-1")
@pytest.mark.parametrize(
    "cipher", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"]
)
def test_cbc_tls12_ciphers_are_refused(edge: Edge, cipher: str) -> None:
    """Suites the ECDSA certificate could serve, but without AEAD: never negotiated."""
    ctx = client_context(edge, ssl.TLSVersion.TLSv1_2, f"{cipher}:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError, match="ALERT"):
        handshake(edge, ctx)


@pytest.mark.claim("ENC-1")
def test_aead_tls12_cipher_is_accepted(edge: Edge) -> None:
    """The control for the test above: the same client succeeds with a suite on our list."""
    ctx = client_context(edge, ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert handshake(edge, ctx) == "TLSv1.2"


@pytest.mark.claim("ENC-1", "SUB-2")
@pytest.mark.parametrize("path", ["/", "/widget/loader.js", "/does-not-exist"])
def test_every_https_response_carries_the_security_headers(edge: Edge, path: str) -> None:
    response = https_get(edge, path)
    hsts = response.getheader("Strict-Transport-Security", "")
    max_age = int(hsts.split("max-age=")[1].split(";")[0])
    assert max_age >= ONE_YEAR
    csp = response.getheader("Content-Security-Policy", "")
    assert "default-src 'self'" in csp
    assert ("frame-ancestors *" in csp) == path.startswith("/widget/")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") == EDGE_DATA["nginx_referrer_policy"]
    assert "camera=()" in response.getheader("Permissions-Policy", "")


@pytest.mark.claim("ENC-1", "AUTH-3", "EPRIV-1")
def test_no_cookie_and_no_version_leaves_the_edge(edge: Edge) -> None:
    """The stand-in app sets a cookie and names itself; the edge passes neither on."""
    response = https_get(edge, "/")
    assert response.status == 200
    assert response.getheader("Set-Cookie") is None
    assert response.getheader("X-Powered-By") is None
    assert response.getheader("Server") == "nginx"  # server_tokens off: no version


@pytest.mark.claim("ENC-1")
@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_port_80_only_redirects(edge: Edge, method: str) -> None:
    response = http_request(edge, method, "/dashboard?x=1")
    assert response.status == 301
    assert response.getheader("Location") == f"https://{DOMAIN}/dashboard?x=1"


@pytest.mark.claim("ENC-1", "ENC-4")
def test_port_80_serves_acme_challenges_and_nothing_else(edge: Edge) -> None:
    (edge.webroot / ".well-known/acme-challenge/tok3n").write_text("tok3n.thumbprint")
    served = http_request(edge, "GET", "/.well-known/acme-challenge/tok3n")
    assert served.status == 200
    assert http_request(edge, "GET", "/.well-known/acme-challenge/missing").status == 404
    assert http_request(edge, "GET", "/.well-known/other").status == 301


@pytest.mark.claim("RATE-1")
def test_coarse_per_ip_limit_answers_429_with_retry_after(edge: Edge) -> None:
    """A burst well past the proxy tier's allowance is cut off, still with HSTS."""
    burst = int(EDGE_DATA["nginx_limit_burst"])
    statuses = []
    for _ in range(burst * 3):
        response = https_get(edge, "/")
        statuses.append(response.status)
        if response.status == 429:
            assert response.getheader("Retry-After") == "1"
            assert response.getheader("Strict-Transport-Security")
    assert statuses[0] == 200
    assert 429 in statuses
    time.sleep(burst / 20 + 1)  # let the bucket refill for the tests after this one


@pytest.mark.claim("ENC-1")
def test_independent_scanner_finds_no_weak_protocol_or_cipher(edge: Edge, tmp_path: Path) -> None:
    """Debian's testssl.sh, not our own client, judges protocols and cipher categories.

    Its certificate findings are left out: the certificate here is a throw-away self-signed one
    (certbot's real issuance is proven against the ACME server below).
    """
    report = tmp_path / "testssl.json"
    subprocess.run(
        ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--protocols",
         "--std", "--server-defaults", "--jsonfile", str(report),
         f"127.0.0.1:{edge.https_port}"],
        capture_output=True, timeout=600, check=False,
    )  # fmt: skip
    findings = json.loads(report.read_text())
    by_id = {f["id"]: f for f in findings}
    for protocol in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert by_id[protocol]["finding"].startswith("not offered"), by_id[protocol]
    assert by_id["TLS1_2"]["finding"].startswith("offered")
    assert by_id["TLS1_3"]["finding"].startswith("offered")
    for category in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):
        assert by_id[f"cipherlist_{category}"]["finding"] == "not offered", category
    weak = [
        f
        for f in findings
        if f["severity"] in {"MEDIUM", "HIGH", "CRITICAL"} and not f["id"].startswith("cert")
    ]
    assert not weak, weak


@dataclass
class Pebble:
    directory: str
    ca_bundle: Path  # trusts pebble's own HTTPS endpoint
    roots: Path  # the root that signs the certificates pebble issues


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def tls_for_pebble(workdir: Path) -> tuple[Path, Path, Path]:
    """Pebble ships no certificate for its API: a throw-away CA and a leaf for 127.0.0.1."""
    ca, cert, key = workdir / "ca.pem", workdir / "api.pem", workdir / "api.key"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
    openssl("req", "-x509", *ec, "-subj", "/CN=lab acme api ca",
            "-keyout", str(workdir / "ca.key"), "-out", str(ca))  # fmt: skip
    openssl("req", "-x509", *ec, "-subj", "/CN=127.0.0.1", "-CA", str(ca),
            "-CAkey", str(workdir / "ca.key"), "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return ca, cert, key


@pytest.fixture(scope="module")
def pebble(edge: Edge, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """Debian's pebble, validating HTTP-01 against the edge's port 80 through a fake DNS."""
    workdir = tmp_path_factory.mktemp("pebble")
    ca, cert, key = tls_for_pebble(workdir)
    api, management, dns, dns_admin = (free_port() for _ in range(4))
    config = workdir / "pebble.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{api}",
                    "managementListenAddress": f"127.0.0.1:{management}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": edge.http_port,
                    "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PATH": "/usr/bin:/bin"}
    challtest = subprocess.Popen(
        ["pebble-challtestsrv", "-http01", "", "-https01", "", "-tlsalpn01", "",
         "-dns01", f"127.0.0.1:{dns}", "-management", f"127.0.0.1:{dns_admin}",
         "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = subprocess.Popen(
        ["pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{dns}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(api)
        wait_for_port(management)
        roots = workdir / "roots.pem"
        ctx = ssl.create_default_context(cafile=str(ca))
        conn = http.client.HTTPSConnection("127.0.0.1", management, context=ctx, timeout=5)
        conn.request("GET", "/roots/0")
        roots.write_bytes(conn.getresponse().read())
        yield Pebble(f"https://127.0.0.1:{api}/dir", ca, roots)
    finally:
        for process in (server, challtest):
            process.terminate()
            process.wait(timeout=10)


def certbot(pebble: Pebble, workdir: Path, cli_ini: Path, *args: str) -> None:
    """certbot as the renewal timer runs it, its state in `workdir` instead of /etc/letsencrypt."""
    dirs = ["--config-dir", str(workdir / "etc"), "--work-dir", str(workdir / "lib"),
            "--logs-dir", str(workdir / "log")]  # fmt: skip
    result = subprocess.run(
        ["certbot", "--config", str(cli_ini), *dirs, *args],
        env={"REQUESTS_CA_BUNDLE": str(pebble.ca_bundle), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.claim("ENC-4")
def test_certbot_issues_and_renews_through_the_edge(
    edge: Edge, pebble: Pebble, tmp_path: Path
) -> None:
    """The deploy's certbot settings get a certificate over ACME HTTP-01 and renew it; the edge
    then serves a chain that verifies against the ACME server's root."""
    cli_ini = tmp_path / "cli.ini"
    cli_ini.write_text(
        render(
            "nginx/certbot-cli.ini.j2",
            **{**EDGE_DATA, "acme_directory": pebble.directory, "acme_webroot": edge.webroot},
        )
    )
    certbot(pebble, tmp_path, cli_ini, "certonly", "--cert-name", "cloop", "-d", DOMAIN)
    live = tmp_path / "etc/live/cloop"
    first = (live / "cert.pem").read_bytes()
    certbot(pebble, tmp_path, cli_ini, "renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert (live / "cert.pem").read_bytes() != first, "renewal issued no new certificate"

    conf = edge.conf.read_text()
    edge.conf.write_text(
        conf.replace(str(edge.cert), str(live / "fullchain.pem")).replace(
            str(edge.cert.with_name("key.pem")), str(live / "privkey.pem")
        )
    )
    main = edge.conf.with_name("nginx.conf")
    subprocess.run(["nginx", "-c", str(main), "-s", "reload"], check=True)
    ctx = ssl.create_default_context(cafile=str(pebble.roots))
    deadline = time.monotonic() + 10
    while True:  # the reload reaches new connections once the old workers hand over
        try:
            with (
                socket.create_connection(("127.0.0.1", edge.https_port), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls,
            ):
                assert tls.version() in {"TLSv1.2", "TLSv1.3"}
                break
        except ssl.SSLCertVerificationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
