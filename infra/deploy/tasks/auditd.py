"""Audit: auditd with CIS rules. Kernel audit is host-wide: in a container auditd cannot run
(the lab never grants CAP_AUDIT_CONTROL), which tests/hosts/waivers.toml records."""

from pyinfra.context import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from infra.deploy import template
from infra.deploy.facts import Virtualization

rules = files.template(
    name="auditd: CIS rules",
    src=template("audit_rules.j2"),
    dest="/etc/audit/rules.d/cloop.rules",
    mode="640",
)
if host.get_fact(Virtualization) == "none":
    systemd.service(
        name="auditd: enabled and running", service="auditd", running=True, enabled=True
    )
    server.shell(
        name="auditd: load the rules", commands=["augenrules --load"], _if=rules.did_change
    )
else:
    skips = [
        files.template(
            name=f"auditd: {unit} only outside containers",
            src=template("audit_container.conf.j2"),
            dest=f"/etc/systemd/system/{unit}.d/cloop-container.conf",
            mode="644",
            create_remote_dir=True,
        )
        for unit in ("auditd.service", "audit-rules.service")
    ]
    systemd.daemon_reload(name="auditd: systemd sees the condition", _if=any_changed(*skips))
    server.shell(
        name="auditd: forget the start that could not work here",
        commands=["systemctl reset-failed auditd.service audit-rules.service"],
        _if=any_changed(*skips),
    )
