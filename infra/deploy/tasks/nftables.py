"""Firewall: ingress default-deny, egress default-deny with the subprocessor allow-list.

Public ingress follows group_data/all.py `ingress` (the Hetzner Cloud Firewall mirrors it);
private ingress (PostgreSQL from app hosts) follows debian13.py `private_ingress`; egress is
`infra.deploy.hostdata.egress` (OPS-1, SUB-1, RES-5).
"""

from pyinfra.context import host, inventory
from pyinfra.operations import files, server, systemd

from infra.deploy import host_data, template
from infra.deploy.hostdata import egress
from infra.deploy.rules import egress_elements, ingress_rules, private_egress_rules
from infra.inventory import ROLES

groups = set(host.groups)
peers: dict[str, list[str]] = {
    role: [
        str(h.data.private_ipv4)
        for h in inventory.get_group(role, [])
        if h.data.get("private_ipv4")
    ]
    for role in ROLES
}
interface: str = host.data.private_interface
config = files.template(
    name="nftables: ingress default-deny, egress allow-list",
    src=template("nftables.conf.j2"),
    dest="/etc/nftables.conf",
    mode="600",
    ingress=ingress_rules(host.data.ingress, groups, host.data.private_ingress, peers, interface),
    private_egress=private_egress_rules(groups, host.data.private_ingress, peers, interface),
    sshd_port=host.data.sshd_port,
    egress=egress_elements(egress(host.name, groups, host_data())),
)
server.shell(
    name="nftables: the new ruleset is valid",
    commands=["nft -c -f /etc/nftables.conf"],
    _if=config.did_change,
)
systemd.service(name="nftables: enabled", service="nftables.service", running=None, enabled=True)
systemd.service(
    name="nftables: ruleset loaded",
    service="nftables.service",
    restarted=True,
    _if=config.did_change,
)
