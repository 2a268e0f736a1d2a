"""Database: PostgreSQL 17 + pgvector from Debian, sized to the host, reachable from the app
hosts only, over TLS with SCRAM (RES-2, RES-6).

Memory and parallelism come from the host's facts; listen addresses are localhost and the
private address; pg_hba names each app host. The app's roles get SCRAM verifiers computed on
the operator's machine from passwords in the operator's secret store.
"""

from pyinfra.context import host, inventory
from pyinfra.facts.hardware import Cpus, Memory
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from infra.deploy import template
from infra.deploy.hostdata import environment_name
from infra.deploy.secrets import scram_verifier, secret

VERSION = host.data.postgres_version
ETC = f"/etc/postgresql/{VERSION}/{host.data.postgres_cluster}"
env_name = environment_name(host.name)
owner, app_role = host.data.postgres_owner_role, host.data.postgres_app_role

apt.packages(name="postgres: installed", packages=host.data.postgres_packages, no_recommends=True)
server.user(  # noqa: S604 - `shell` is the login shell, not a subprocess flag
    name="postgres: the service account cannot log in",
    user="postgres",
    shell="/usr/sbin/nologin",
    ensure_home=False,
)
settings = files.template(
    name="postgres: settings for this host",
    src=template("postgres/cloop.conf.j2"),
    dest=f"{ETC}/conf.d/cloop.conf",
    user="postgres",
    group="postgres",
    mode="640",
    memory_mb=int(host.get_fact(Memory)),
    cpus=int(host.get_fact(Cpus)),
    listen_addresses=["localhost", host.data.private_ipv4],
    port=host.data.postgres_port,
    max_connections=host.data.postgres_max_connections,
    ssl_cert_file="/etc/ssl/certs/ssl-cert-snakeoil.pem",
    ssl_key_file="/etc/ssl/private/ssl-cert-snakeoil.key",
    shared_buffers_ratio=host.data.postgres_shared_buffers_ratio,
    effective_cache_ratio=host.data.postgres_effective_cache_ratio,
    stanza=host.data.pgbackrest_stanza,
    archive_timeout_s=host.data.pgbackrest_archive_timeout_s,
)
hba = files.template(
    name="postgres: TLS + SCRAM from the app hosts only",
    src=template("postgres/pg_hba.conf.j2"),
    dest=f"{ETC}/pg_hba.conf",
    user="postgres",
    group="postgres",
    mode="640",
    app_addresses=[h.data.private_ipv4 for h in inventory.get_group("app")],
    database=host.data.postgres_database,
    roles=[owner, app_role],
)
service = f"postgresql@{VERSION}-{host.data.postgres_cluster}"
systemd.service(name="postgres: enabled and running", service=service, running=True, enabled=True)
systemd.service(
    name="postgres: restart for changed settings",
    service=service,
    restarted=True,
    _if=any_changed(settings, hba),
)
roles = files.template(
    name="postgres: the app's roles and database",
    src=template("postgres/roles.sql.j2"),
    dest="/etc/cloop/db-roles.sql",
    user="root",
    group="postgres",
    mode="640",
    owner_role=owner,
    app_role=app_role,
    owner_verifier=scram_verifier(secret(env_name, f"{owner}_password"), owner),
    app_verifier=scram_verifier(secret(env_name, f"{app_role}_password"), app_role),
    database=host.data.postgres_database,
)
server.shell(
    name="postgres: apply roles and database",
    commands=[
        f"runuser -u postgres -- psql -X -q -p {host.data.postgres_port} -f -"
        " < /etc/cloop/db-roles.sql"
    ],
    _if=roles.did_change,
)
