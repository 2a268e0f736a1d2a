"""Edge certificates: certbot over ACME HTTP-01 through nginx's port 80, renewed by Debian's
`certbot.timer` with a hook that reloads nginx (ENC-4).

Let's Encrypt in production; the lab points `acme_directory` at its local ACME server and
`acme_ca_bundle` at that server's CA on the operator's machine: it is uploaded and certbot
reads it from REQUESTS_CA_BUNDLE.
"""

from pyinfra.context import host
from pyinfra.facts.files import Link
from pyinfra.operations import apt, files, server, systemd

from infra.deploy import template

LIVE = "/etc/letsencrypt/live/cloop"
TLS_DIR = host.data.edge_tls_dir

apt.packages(name="certbot: installed", packages=["certbot"], no_recommends=True)
files.template(
    name="certbot: issuing and renewal settings",
    src=template("nginx/certbot-cli.ini.j2"),
    dest="/etc/letsencrypt/cli.ini",
    mode="644",
    acme_directory=host.data.acme_directory,
    acme_email=host.data.acme_email,
    acme_webroot=host.data.acme_webroot,
)
files.template(
    name="certbot: reload nginx after each renewal",
    src=template("nginx/certbot-reload-nginx.sh.j2"),
    dest="/etc/letsencrypt/renewal-hooks/deploy/reload-nginx",
    mode="755",
)
ca_bundle = "/etc/letsencrypt/acme-ca.pem" if host.data.get("acme_ca_bundle") else ""
if ca_bundle:
    files.put(
        name="certbot: the lab ACME server's CA",
        src=host.data.acme_ca_bundle,
        dest=ca_bundle,
        mode="644",
    )
ENV_DROPIN = "/etc/systemd/system/certbot.service.d/cloop.conf"
if ca_bundle:
    dropin = files.template(
        name="certbot: the ACME server's CA for the renewal service",
        src=template("nginx/certbot-service-env.conf.j2"),
        dest=ENV_DROPIN,
        mode="644",
        ca_bundle=ca_bundle,
    )
else:
    dropin = files.file(name="certbot: the public CAs only", path=ENV_DROPIN, present=False)
systemd.daemon_reload(name="certbot: systemd reads the drop-in", _if=dropin.did_change)
if not host.get_fact(Link, path=f"{LIVE}/fullchain.pem"):  # certbot links into archive/
    env = f"REQUESTS_CA_BUNDLE={ca_bundle} " if ca_bundle else ""
    domains = " ".join(f"-d {name}" for name in host.data.edge_domains)
    server.shell(
        name="certbot: first certificate, then nginx serves it",
        commands=[
            f"{env}certbot certonly --cert-name cloop {domains}",
            f"ln -sfn {LIVE}/fullchain.pem {TLS_DIR}/fullchain.pem",
            f"ln -sfn {LIVE}/privkey.pem {TLS_DIR}/privkey.pem",
            "systemctl reload nginx",
        ],
    )
systemd.service(
    name="certbot: renewal timer enabled",
    service="certbot.timer",
    running=True,
    enabled=True,
)
