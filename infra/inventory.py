"""Load and validate an inventory (hosts and groups) with its group data.

Inventories are pyinfra inventory files (`inventories/<name>.py`, module-level lists of hosts
per group) plus `inventories/group_data/all.py`. Everything that provisioning, the deploy and
the compliance documents need is read from here, so a mistake in the data is caught once, on
load, with a message naming the offending entry.
"""

from __future__ import annotations

import json
import re
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

REPO = Path(__file__).resolve().parents[1]
INVENTORIES = REPO / "inventories"

Role = Literal["edge", "app", "db"]
Group = Literal["edge", "app", "db", "debian13"]
ROLES: tuple[Role, ...] = ("edge", "app", "db")
BASE_GROUP: Literal["debian13"] = "debian13"
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class InventoryError(Exception):
    """The inventory or its data is wrong; the message says where."""


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Data):
    """A place a host connects to: the unit of the egress allow-list."""

    host: str
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"]
    roles: list[Group] = Field(min_length=1)
    purpose: str


class Subprocessor(_Data):
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    processing: str
    purpose: str
    personal_data: str
    endpoints: list[Endpoint]


class IngressRule(_Data):
    protocol: Literal["tcp", "udp", "icmp"]
    port: str | None
    description: str


class Environment(_Data):
    prefix: str = Field(pattern=r"^[a-z][a-z0-9-]+$")
    server_types: dict[Role, str]
    db_volume_gb: int = Field(ge=10, le=10240)
    apt_mirror: str
    customer_data: bool

    @field_validator("server_types")
    @classmethod
    def _every_role(cls, value: dict[Role, str]) -> dict[Role, str]:
        missing = set(ROLES) - set(value)
        if missing:
            raise ValueError(f"no server type for role(s) {sorted(missing)}")
        return value


class PrivateNetwork(_Data):
    ip_range: str
    subnet: str


class Bucket(_Data):
    purpose: str
    expire_days: int | None = Field(default=None, ge=1, le=30)


class ObjectStorage(_Data):
    endpoint: str
    region: str
    buckets: dict[str, Bucket] = Field(min_length=1)
    noncurrent_expire_days: int = Field(ge=1, le=30)

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""


class AIBoundary(_Data):
    provider: str
    sent: list[str] = Field(min_length=1)
    kept: list[str] = Field(min_length=1)


class Monitoring(_Data):
    """What every host checks each minute and where alerts go (OPS-2)."""

    webhook_url: str = Field(pattern=r"^https://[^/]+/")
    interval_s: int = Field(ge=10, le=300)
    units: dict[Group, list[str]]
    disk_paths: dict[Group, list[str]]
    disk_warning_percent: int = Field(ge=1, le=99)
    disk_critical_percent: int = Field(ge=2, le=100)
    certificate_warning_days: int = Field(ge=2, le=60)
    certificate_critical_days: int = Field(ge=1, le=59)
    backup_max_age_hours: int = Field(ge=1, le=48)
    http_path: str = Field(pattern=r"^/")

    @model_validator(mode="after")
    def _ordered(self) -> Monitoring:
        if self.disk_warning_percent >= self.disk_critical_percent:
            raise ValueError("disk_warning_percent must be below disk_critical_percent")
        if self.certificate_warning_days <= self.certificate_critical_days:
            raise ValueError("certificate_warning_days must exceed certificate_critical_days")
        return self


class GroupData(_Data):
    """The contents of `group_data/all.py`."""

    location: str
    network_zone: str
    country: str
    image: str
    environments: dict[str, Environment]
    private_network: PrivateNetwork
    ingress: dict[Group, list[IngressRule]]
    ssh_keys: dict[str, str] = Field(min_length=1)
    object_storage: ObjectStorage
    subprocessors: list[Subprocessor] = Field(min_length=1)
    ai_boundary: AIBoundary
    monitoring: Monitoring


class Host(_Data):
    name: str
    roles: frozenset[Role]
    ssh_hostname: str | None = None
    ssh_port: int | None = None
    private_ipv4: str | None = None


class Inventory(_Data):
    """An environment's hosts with the data that applies to them."""

    name: str
    hosts: list[Host]
    data: GroupData

    @property
    def env(self) -> Environment:
        return self.data.environments[self.name]

    @property
    def prefix(self) -> str:
        return self.env.prefix

    def with_data(self, **changes: Any) -> Inventory:
        """A copy with some group data replaced and validated again (tests, lab overrides)."""
        merged = self.data.model_dump() | changes
        return self.model_copy(update={"data": _validate(GroupData, merged, "group data")})


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], raw: Any, where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise InventoryError(f"{where}: {path}: {first['msg']}") from None


def _group_hosts(value: Any, group: str, source: Path) -> list[str]:
    hosts = value[0] if isinstance(value, tuple) else value
    names = [h[0] if isinstance(h, tuple) else h for h in hosts]
    for name in names:
        if not isinstance(name, str) or not HOSTNAME.match(name):
            raise InventoryError(f"{source.name}: group {group}: invalid host name {name!r}")
    return names


def _read_groups(path: Path) -> dict[str, list[str]]:
    """The pyinfra groups of an inventory file: public module-level lists and tuples."""
    module = runpy.run_path(str(path))
    return {
        key: _group_hosts(value, key, path)
        for key, value in module.items()
        if not key.startswith("_") and isinstance(value, list | tuple)
    }


def _hosts(name: str, groups: dict[str, list[str]], source: Path) -> list[Host]:
    unknown = set(groups) - {*ROLES, BASE_GROUP}
    if unknown:
        raise InventoryError(f"{source.name}: unknown group(s) {sorted(unknown)}")
    base = groups.get(BASE_GROUP, [])
    ordered = list(dict.fromkeys(h for g in (*ROLES, BASE_GROUP) for h in groups.get(g, [])))
    if not ordered:
        raise InventoryError(f"{source.name}: no hosts")
    state = read_state(state_path(name, source.parent)).get("hosts", {})
    hosts = []
    for host in ordered:
        roles = frozenset(r for r in ROLES if host in groups.get(r, []))
        if not roles:
            raise InventoryError(f"{source.name}: host {host} has no role (edge, app or db)")
        if host not in base:
            raise InventoryError(f"{source.name}: host {host} is not in group {BASE_GROUP}")
        hosts.append(Host(name=host, roles=roles, **_address(state.get(host, {}))))
    return hosts


def _address(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("ssh_hostname", "ssh_port", "private_ipv4")
    return {k: entry[k] for k in keys if k in entry}


def load_group_data(directory: Path = INVENTORIES / "group_data") -> GroupData:
    path = directory / "all.py"
    raw = {k: v for k, v in runpy.run_path(str(path)).items() if not k.startswith("_")}
    return _validate(GroupData, raw, f"group_data/{path.name}")


def load(name: str, directory: Path = INVENTORIES) -> Inventory:
    """The inventory `<directory>/<name>.py` with its group data, validated."""
    source = directory / f"{name}.py"
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name) or not source.is_file():
        known = sorted(p.stem for p in directory.glob("*.py") if not p.stem.startswith("_"))
        raise InventoryError(f"unknown inventory {name!r} (known: {', '.join(known)})")
    data = load_group_data(directory / "group_data")
    if name not in data.environments:
        raise InventoryError(f"group_data/all.py: no environment {name!r} in environments")
    inventory = Inventory(name=name, hosts=_hosts(name, _read_groups(source), source), data=data)
    _check(inventory)
    return inventory


def _check(inventory: Inventory) -> None:
    """Rules across fields: host names carry the prefix; no unlisted party sees real hosts."""
    for host in inventory.hosts:
        if not host.name.startswith(f"{inventory.prefix}-"):
            raise InventoryError(
                f"{inventory.name}.py: host {host.name} must start with {inventory.prefix}-"
            )
    names = [sp.name for sp in inventory.data.subprocessors]
    if inventory.data.ai_boundary.provider not in names:
        raise InventoryError(
            f"ai_boundary.provider {inventory.data.ai_boundary.provider!r} is not a subprocessor"
        )
    mirror = urlsplit(inventory.env.apt_mirror).hostname or ""
    if inventory.env.customer_data and subprocessor_of(inventory, mirror) is None:
        raise InventoryError(
            f"environment {inventory.name}: apt mirror {mirror} is not run by a subprocessor"
        )


def state_path(name: str, directory: Path = INVENTORIES) -> Path:
    """Where provisioning records what it created for an inventory."""
    return directory / "state" / f"{name}.json"


def read_state(path: Path) -> dict[str, Any]:
    """What provisioning recorded (empty before the first run)."""
    if not path.is_file():
        return {}
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def state_hosts(inventory_file: str) -> Callable[..., list[tuple[str, dict[str, Any]]]]:
    """For inventory files (`state_hosts(__file__)`): `hosts("a", "b")` -> pyinfra host
    entries carrying the addresses provisioning recorded for that inventory."""
    source = Path(inventory_file)
    recorded = read_state(state_path(source.stem, source.parent)).get("hosts", {})

    def hosts(*names: str) -> list[tuple[str, dict[str, Any]]]:
        return [(n, _address(recorded.get(n, {}))) for n in names]

    return hosts


def egress_allowlist(inventory: Inventory, roles: frozenset[str]) -> list[Endpoint]:
    """Every endpoint a host with these roles may connect to, from the subprocessor data.

    Used by the hosts' nftables egress rules and by the compliance documents, so the two
    cannot disagree. The environment's package mirror is added when no subprocessor serves it
    (the lab's); where customer data lives it must belong to a subprocessor (see `load`).
    """
    wanted = roles | {BASE_GROUP}
    allowed = [
        ep for sp in inventory.data.subprocessors for ep in sp.endpoints if wanted & set(ep.roles)
    ]
    mirror = urlsplit(inventory.env.apt_mirror)
    if mirror.hostname and mirror.hostname not in {ep.host for ep in allowed}:
        port = mirror.port or (443 if mirror.scheme == "https" else 80)
        allowed.append(
            Endpoint(
                host=mirror.hostname,
                port=port,
                protocol="tcp",
                roles=[BASE_GROUP],
                purpose="package mirror of this environment (not a subprocessor)",
            )
        )
    return allowed


def subprocessor_of(inventory: Inventory, host: str) -> Subprocessor | None:
    """The subprocessor that operates an endpoint host, if any."""
    for sp in inventory.data.subprocessors:
        if any(ep.host == host for ep in sp.endpoints):
            return sp
    return None
