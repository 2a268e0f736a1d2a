"""The app's daily jobs as systemd timers on the first app host (one run per environment): the
privacy purge (erasure and retention, GDPR-17: within 30 days) and the audit purge (LOG-3).

They run the live release's Python with the app's settings (owner database URL in app.env) and
the uploads bucket's settings (storage.env), inside the app's sandbox. Runs after app_release.py.
"""

from pyinfra.context import host, inventory
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from infra.deploy import host_data, includes, template
from infra.deploy.hostdata import app_ip_allow, environment, s3_keys
from infra.inventory import load_group_data

user, conf = host.data.app_user, host.data.app_config_dir
runs_jobs = inventory.get_group("app")[0].name == host.name
storage = load_group_data().object_storage
endpoint = host.data.get("s3_endpoint_override") or storage.endpoint
access_key, secret_key = s3_keys(host_data())

S3_CA = f"{conf}/s3-ca.pem"
if host.data.get("s3_ca_file"):
    files.put(name="app jobs: the lab's S3 CA", src=host.data.s3_ca_file, dest=S3_CA, mode="644")
files.template(
    name="app jobs: uploads bucket settings",
    src=template("app/storage.env.j2"),
    dest=f"{conf}/storage.env",
    group=user,
    mode="640",
    app_user=user,
    endpoint=endpoint,
    region=storage.region,
    bucket=f"{environment(host.name).prefix}-{host.data.app_uploads_bucket}",
    access_key=access_key,
    secret_key=secret_key,
    ca_file=S3_CA if host.data.get("s3_ca_file") else "",
)
units = []
for unit, job in host.data.app_jobs.items():
    units.append(
        files.template(
            name=f"app jobs: {unit}.service",
            src=template("app/cloop-job.service.j2"),
            dest=f"/etc/systemd/system/{unit}.service",
            mode="644",
            unit=unit,
            command=job["command"],
            app_user=user,
            app_config_dir=conf,
            app_root=host.data.app_root,
            app_ip_allow=app_ip_allow(host.name, host.groups, host_data()),
            jinja_env_kwargs=includes(),
        )
    )
    units.append(
        files.template(
            name=f"app jobs: {unit}.timer",
            src=template("app/cloop-job.timer.j2"),
            dest=f"/etc/systemd/system/{unit}.timer",
            mode="644",
            unit=unit,
            time=job["time"],
        )
    )
systemd.daemon_reload(name="app jobs: systemd reads the units", _if=any_changed(*units))
for unit in host.data.app_jobs:
    systemd.service(
        name=f"app jobs: {unit}.timer {'daily' if runs_jobs else 'off on this host'}",
        service=f"{unit}.timer",
        running=runs_jobs,
        enabled=runs_jobs,
    )
