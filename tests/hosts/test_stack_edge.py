"""Edge hosts, checked from the host itself: TLS 1.2/1.3 only, HSTS on every response, no
cookies, port 80 redirects, certificates from ACME with a renewal timer (ENC-1, ENC-4)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from tests.hosts.conftest import connect, data_of, hosts

ONE_YEAR = 365 * 24 * 3600
PROBE = r"""
import json, socket, ssl, sys, urllib.request
version, path = sys.argv[1], sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE; ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
try:
    with socket.create_connection(("127.0.0.1", 443), 5) as raw, \
         ctx.wrap_socket(raw, server_hostname=sys.argv[3]) as tls:
        request = f"GET {path} HTTP/1.1\r\nHost: {sys.argv[3]}\r\nConnection: close\r\n\r\n"
        tls.sendall(request.encode())
        head = tls.recv(65536).decode(errors="replace").split("\r\n\r\n")[0]
    print(json.dumps({"ok": True, "head": head}))
except (ssl.SSLError, OSError) as exc:
    print(json.dumps({"ok": False, "error": str(exc)}))
"""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edge_name" in metafunc.fixturenames:
        names = [h.name for h in hosts() if "edge" in h.roles]
        metafunc.parametrize("edge_name", names, ids=names)


def probe(host: Any, domain: str, version: str, path: str = "/") -> dict[str, Any]:
    out = host.check_output(f"python3 -c {shlex.quote(PROBE)} {version} {path} {domain}")
    return dict(json.loads(out))


def headers(head: str) -> dict[str, str]:
    lines = head.split("\r\n")[1:]
    return {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines if ":" in ln)}


@pytest.mark.claim("ENC-1")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_refused(edge_name: str, version: str) -> None:
    result = probe(connect(edge_name), data_of(edge_name)["edge_domains"][0], version)
    assert not result["ok"]
    assert "ALERT" in result["error"], result["error"]


@pytest.mark.claim("ENC-1")
@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
@pytest.mark.parametrize("path", ["/", "/healthz", "/no-such-page", "/widget/loader.js"])
def test_modern_tls_with_hsts_and_no_cookie(edge_name: str, version: str, path: str) -> None:
    result = probe(connect(edge_name), data_of(edge_name)["edge_domains"][0], version, path)
    assert result["ok"], result
    sent = headers(result["head"])
    assert int(sent["strict-transport-security"].split("max-age=")[1].split(";")[0]) >= ONE_YEAR
    assert "set-cookie" not in sent
    assert sent["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in sent


@pytest.mark.claim("ENC-1")
def test_port_80_only_redirects(edge_name: str) -> None:
    host, domain = connect(edge_name), data_of(edge_name)["edge_domains"][0]
    script = ("import http.client as h; c = h.HTTPConnection('127.0.0.1', 80, timeout=5); "
              "c.request('GET', '/x'); r = c.getresponse(); "
              "print(r.status, r.getheader('Location'))")  # fmt: skip
    assert host.check_output(f'python3 -c "{script}"') == f"301 https://{domain}/x"


@pytest.mark.claim("ENC-4")
def test_certificate_from_acme_with_renewal_timer(edge_name: str) -> None:
    host, data = connect(edge_name), data_of(edge_name)
    live = "/etc/letsencrypt/live/cloop/fullchain.pem"
    assert host.file(live).exists
    # nginx reads the certificate through the edge's link, pointed at certbot's live copy
    assert host.check_output(f"readlink {data['edge_tls_dir']}/fullchain.pem") == live
    cli_ini = host.file("/etc/letsencrypt/cli.ini").content_string
    assert f"server = {data['acme_directory']}" in cli_ini
    timer = host.service("certbot.timer")
    assert timer.is_enabled
    assert timer.is_running
