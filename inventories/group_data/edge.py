"""Edge hosts (nginx in front of the app): TLS policy, security headers, coarse per-IP limit.

The values are the public security page made concrete (ENC-1, ENC-4, RATE-1, SUB-2). The lab
inventory overrides `acme_directory` / `acme_ca_bundle` with its local ACME server.
"""

# The public name the edge answers to; its certificate covers exactly these names.
edge_domains = ["chat.cloop.eu"]

# TLS 1.2 and 1.3 only; for 1.2 only forward-secret AEAD suites (Mozilla "intermediate" without
# the finite-field DHE suites). TLS 1.3 suites are fixed by OpenSSL and all strong.
nginx_tls_protocols = "TLSv1.2 TLSv1.3"
nginx_tls_ciphers = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
nginx_hsts_max_age = 63072000  # two years; the claim needs at least one

# Our own pages load nothing from third parties (SUB-2); the widget's files may be framed and
# fetched by customers' sites, so only their frame-ancestors differ.
nginx_csp = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
nginx_csp_widget = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "img-src 'self' data:; frame-ancestors *"
)
nginx_referrer_policy = "strict-origin-when-cross-origin"
nginx_permissions_policy = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
)

# Coarse per-IP ceiling in front of the app's own multi-tier limits (RATE-1, proxy tier).
nginx_limit_rate = "20r/s"
nginx_limit_burst = 40

# The app listens on each app host's private address on this port.
app_port = 8000

# Certificates: Let's Encrypt in production (ENC-4); certbot's Debian timer renews them.
acme_directory = "https://acme-v02.api.letsencrypt.org/directory"
acme_ca_bundle = ""  # empty: the system's trust store
acme_email = "security@cloop.eu"
acme_webroot = "/var/www/acme"
# nginx reads the certificate through links here: bootstrap first, then certbot's.
edge_tls_dir = "/etc/cloop/tls"
