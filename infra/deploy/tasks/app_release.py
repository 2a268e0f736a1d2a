"""App: a release per wheelhouse, installed offline, migrated, switched behind a health check,
run by a sandboxed systemd unit (the hosts never reach PyPI).

The wheelhouse is built once per deploy run on the operator's machine
(`infra/release/wheelhouse.py`) and uploaded to releases/<id>/wheels; `cloop-release <id>`
(templates/app/cloop-release.sh.j2) does the rest and rolls back on a failed health check.
"""

import io
import tarfile
from functools import cache
from pathlib import Path

from pyinfra.context import host, inventory
from pyinfra.facts.files import File, Link
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from infra.deploy import includes, template
from infra.deploy.hostdata import app_ip_allow, environment_name
from infra.deploy.secrets import secret, signing_key_pem
from infra.release.wheelhouse import Target, Wheelhouse, build


@cache
def wheelhouse(target: Target) -> Wheelhouse:
    """One build per deploy run, whatever the number of app hosts."""
    return build(target)


@cache
def archive(path: Path) -> str:
    """The wheelhouse as one tar file (`wheels/...`) next to it, made once per release."""
    tar = path.with_suffix(".tar")
    if not tar.exists():
        with tarfile.open(tar.with_suffix(".partial"), "w") as out:
            out.add(path, arcname="wheels")
        tar.with_suffix(".partial").rename(tar)
    return str(tar)


release = wheelhouse(
    Target(host.data.host_python_version, host.data.host_arch, tuple(host.data.host_glibc))
)
root, user, conf = host.data.app_root, host.data.app_user, host.data.app_config_dir
env_name = environment_name(host.name)
db = inventory.get_group("db")[0]
listen = host.data.private_ipv4
host_data = host.data.dict()  # type: ignore[no-untyped-call]
edges = [h.data.private_ipv4 for h in inventory.get_group("edge")]

apt.packages(name="app: Python and venv support", packages=["python3"], no_recommends=True)
server.group(name="app: group", group=user, system=True)
server.user(  # noqa: S604 - `shell` is the login shell, not a subprocess flag
    name="app: own user without login",
    user=user,
    group=user,
    system=True,
    shell="/usr/sbin/nologin",
    home=root,
    create_home=False,
    ensure_home=False,  # releases stay root-owned: the app cannot change its own code
)
files.directory(name="app: releases", path=f"{root}/releases", mode="755")
files.directory(name="app: configuration", path=conf, group=user, mode="750")
files.directory(name="app: signing keys", path=f"{conf}/signing-keys", group=user, mode="750")
files.put(
    name="app: token signing key (shared by all app hosts)",
    src=io.StringIO(secret(env_name, "app_signing_key", generate=signing_key_pem)),
    dest=f"{conf}/signing-keys/current.pem",
    group=user,
    mode="640",
)
settings = files.template(
    name="app: settings",
    src=template("app/app.env.j2"),
    dest=f"{conf}/app.env",
    group=user,
    mode="640",
    app_user=user,
    app_config_dir=conf,
    app_role=db.data.postgres_app_role,
    owner_role=db.data.postgres_owner_role,
    app_password=secret(env_name, f"{db.data.postgres_app_role}_password"),
    owner_password=secret(env_name, f"{db.data.postgres_owner_role}_password"),
    db_address=db.data.private_ipv4,
    db_port=db.data.postgres_port,
    database=db.data.postgres_database,
    app_environment=host.data.app_environment,
)
unit = files.template(
    name="app: sandboxed systemd unit",
    src=template("app/cloop-app.service.j2"),
    dest="/etc/systemd/system/cloop-app.service",
    mode="644",
    app_user=user,
    app_config_dir=conf,
    app_root=root,
    app_listen=listen,
    app_port=host.data.app_port,
    app_forwarded_allow_ips=",".join(edges),
    app_ip_allow=app_ip_allow(host.name, host.groups, host_data),
    jinja_env_kwargs=includes(),
)
script = files.template(
    name="app: release script",
    src=template("app/cloop-release.sh.j2"),
    dest="/usr/local/sbin/cloop-release",
    mode="755",
    app_root=root,
    app_user=user,
    app_config_dir=conf,
    app_listen=listen,
    app_port=host.data.app_port,
    app_health_path=host.data.app_health_path,
    app_health_timeout_s=host.data.app_health_timeout_s,
    app_releases_kept=host.data.app_releases_kept,
    project_wheel=release.project_wheel,
)
systemd.daemon_reload(name="app: systemd reads the unit", _if=unit.did_change)
systemd.service(
    name="app: enabled at boot (started by the release)",
    service="cloop-app.service",
    running=None,
    enabled=True,
)
target = f"{root}/releases/{release.release_id}"
if not host.get_fact(File, path=f"{target}/wheels/SHA256SUMS"):
    # one archive, not a file-by-file sync: sshd allows two sessions per connection (hardening)
    files.put(
        name=f"app: upload wheelhouse {release.release_id}",
        src=archive(release.path),
        dest=f"{target}.tar",
        mode="600",
    )
    server.shell(
        name=f"app: unpack wheelhouse {release.release_id}",
        commands=[f"mkdir -p {target} && tar -xf {target}.tar -C {target} && rm {target}.tar"],
    )
live = host.get_fact(Link, path=f"{root}/current")
server.shell(
    name=f"app: release {release.release_id} (migrate, switch, health check, or roll back)",
    commands=[f"/usr/local/sbin/cloop-release {release.release_id}"],
    _if=lambda: not live or live.get("link_target") != target,
)
systemd.service(
    name="app: restart for changed settings",
    service="cloop-app.service",
    restarted=True,
    _if=any_changed(settings, unit),
)
