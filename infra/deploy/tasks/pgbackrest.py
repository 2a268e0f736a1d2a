"""Backups: pgBackRest to Hetzner Object Storage `hel1`, encrypted on the host with a passphrase
from the operator's secret store; WAL archived continuously; a daily systemd timer (RES-3,
RES-4, ENC-3, OPS-3). Runs after postgres.py, whose settings name the archive command.

S3 credentials come from the operator's environment (S3_ACCESS_KEY / S3_SECRET_KEY, as for
`cloop-ops buckets`; hostdata.s3_keys); the lab overrides the endpoint with
`s3_endpoint_override` and trusts
its stand-in through `s3_ca_file` (a CA file on the operator's machine, uploaded here).
The first deploy takes a full backup, so a backup exists from day one.
"""

from urllib.parse import urlsplit

from pyinfra.context import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from infra.deploy import host_data, template
from infra.deploy.hostdata import environment, environment_name, s3_keys
from infra.deploy.secrets import secret
from infra.inventory import load_group_data

storage = load_group_data().object_storage
endpoint = urlsplit(host.data.get("s3_endpoint_override") or storage.endpoint)
env = environment(host.name)
stanza = host.data.pgbackrest_stanza
s3_key, s3_secret = s3_keys(host_data())
pg_data = f"/var/lib/postgresql/{host.data.postgres_version}/{host.data.postgres_cluster}"

S3_CA = "/etc/pgbackrest/s3-ca.pem"
if host.data.get("s3_ca_file"):
    files.put(name="pgbackrest: the lab's S3 CA", src=host.data.s3_ca_file, dest=S3_CA, mode="644")
config = files.template(
    name="pgbackrest: encrypted S3 repository in hel1",
    src=template("pgbackrest/pgbackrest.conf.j2"),
    dest="/etc/pgbackrest/pgbackrest.conf",
    user="root",
    group="postgres",
    mode="640",
    s3_host=endpoint.hostname,
    s3_port=endpoint.port or 443,
    s3_region=storage.region,
    bucket=f"{env.prefix}-{host.data.pgbackrest_bucket}",
    s3_key=s3_key,
    s3_key_secret=s3_secret,
    s3_ca_file=S3_CA if host.data.get("s3_ca_file") else "",
    repo_path=env.prefix,
    cipher_type=host.data.pgbackrest_cipher_type,
    cipher_pass=secret(environment_name(host.name), "pgbackrest_passphrase"),
    retention_full_days=host.data.pgbackrest_retention_full_days,
    process_max=2,
    stanza=stanza,
    pg_data=pg_data,
    pg_port=host.data.postgres_port,
    pg_socket_dir="/var/run/postgresql",
)
server.shell(
    name="pgbackrest: stanza exists and archiving works",
    commands=[
        f"runuser -u postgres -- pgbackrest --stanza={stanza} stanza-create",
        f"runuser -u postgres -- pgbackrest --stanza={stanza} check",
        f"runuser -u postgres -- pgbackrest --stanza={stanza} info --output=json"
        f" | grep -q '\"label\"' || runuser -u postgres -- pgbackrest --stanza={stanza}"
        " --type=full backup",
    ],
    _if=config.did_change,
)
units = [
    files.template(
        name=f"pgbackrest: {unit}",
        src=template(f"pgbackrest/{unit}.j2"),
        dest=f"/etc/systemd/system/{unit}",
        mode="644",
        stanza=stanza,
        full_weekday=host.data.pgbackrest_full_weekday,
        backup_time=host.data.pgbackrest_backup_time,
    )
    for unit in ("cloop-backup.service", "cloop-backup.timer")
]
systemd.daemon_reload(name="pgbackrest: systemd reads the units", _if=any_changed(*units))
systemd.service(
    name="pgbackrest: daily backup timer", service="cloop-backup.timer", running=True, enabled=True
)
