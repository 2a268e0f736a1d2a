"""Edge: nginx in front of the app hosts with the TLS, header and rate policy of edge.py.

TLS 1.2/1.3 only, HSTS and the other security headers on every response, a coarse per-IP
limit, port 80 for redirects and ACME challenges only (ENC-1, RATE-1). The certificate path is a
link: a self-signed bootstrap certificate lets nginx start, certbot.py repoints it (ENC-4).
"""

from pyinfra.context import host, inventory
from pyinfra.facts.files import Link
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from infra.deploy import template

TLS_DIR = host.data.edge_tls_dir
# Every address by default; the lab names its host's own (its metadata stand-in holds
# 169.254.169.254:80 inside the host, which a wildcard listener would collide with).
LISTEN = [f"{a}:" for a in host.data.get("nginx_listen_addresses", [])] or [""]

apt.packages(name="nginx: installed", packages=["nginx"], no_recommends=True)
default_site = files.link(
    name="nginx: Debian's default site removed",
    path="/etc/nginx/sites-enabled/default",
    present=False,
)
files.directory(name="nginx: ACME webroot", path=host.data.acme_webroot, mode="755")
files.directory(name="nginx: certificate links", path=TLS_DIR, mode="755")
if not host.get_fact(Link, path=f"{TLS_DIR}/fullchain.pem"):  # a link (bootstrap or ACME)
    server.shell(
        name="nginx: self-signed bootstrap certificate until ACME issues the real one",
        commands=[
            f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7"
            f" -subj /CN={host.data.edge_domains[0]} -keyout {TLS_DIR}/bootstrap-key.pem"
            f" -out {TLS_DIR}/bootstrap.pem",
            f"chmod 600 {TLS_DIR}/bootstrap-key.pem",
            f"ln -sfn bootstrap.pem {TLS_DIR}/fullchain.pem",
            f"ln -sfn bootstrap-key.pem {TLS_DIR}/privkey.pem",
        ],
    )
site = files.template(
    name="nginx: the edge site",
    src=template("nginx/cloop.conf.j2"),
    dest="/etc/nginx/conf.d/cloop.conf",
    mode="644",
    app_upstreams=[
        f"{app.data.private_ipv4}:{host.data.app_port}" for app in inventory.get_group("app")
    ],
    http_listen=[f"{address}80" for address in LISTEN],
    https_listen=[f"{address}443" for address in LISTEN],
    tls_certificate=f"{TLS_DIR}/fullchain.pem",
    tls_certificate_key=f"{TLS_DIR}/privkey.pem",
    edge_domains=host.data.edge_domains,
    acme_webroot=host.data.acme_webroot,
    nginx_tls_protocols=host.data.nginx_tls_protocols,
    nginx_tls_ciphers=host.data.nginx_tls_ciphers,
    nginx_hsts_max_age=host.data.nginx_hsts_max_age,
    nginx_csp=host.data.nginx_csp,
    nginx_csp_widget=host.data.nginx_csp_widget,
    nginx_referrer_policy=host.data.nginx_referrer_policy,
    nginx_permissions_policy=host.data.nginx_permissions_policy,
    nginx_limit_rate=host.data.nginx_limit_rate,
    nginx_limit_burst=host.data.nginx_limit_burst,
)
server.shell(
    name="nginx: the new configuration is valid",
    commands=["nginx -t"],
    _if=any_changed(site, default_site),
)
systemd.service(name="nginx: enabled and running", service="nginx", running=True, enabled=True)
systemd.service(
    name="nginx: reload the changed configuration",
    service="nginx",
    reloaded=True,
    _if=any_changed(site, default_site),
)
