"""A stand-in for the Hetzner Cloud API (https://docs.hetzner.cloud), driven by the `hcloud` client.

It speaks the real JSON of the endpoints provisioning uses: servers, ssh_keys, firewalls,
networks, placement_groups, volumes, primary_ips, load_balancers, the catalogue (locations,
server_types, images, load_balancer_types) and actions, with the real error envelope
(`{"error": {"code", "message", "details"}}`), `meta.pagination`, label selectors, name
uniqueness, delete protection and rate limiting (`RateLimit-*` headers, 429 when exhausted).
Actions complete at once. What a server *is* comes from a pluggable `ServerBackend`.
Like the real API it accepts every location: refusing non-Helsinki ones is provisioning's job.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import RequestResponseEndpoint

from infra.standins import serve_asgi
from infra.standins.backends import RecordingBackend, ServerBackend

Row = dict[str, Any]
SINGULAR = {
    "ssh_keys": "ssh_key",
    "firewalls": "firewall",
    "networks": "network",
    "placement_groups": "placement_group",
    "servers": "server",
    "volumes": "volume",
    "primary_ips": "primary_ip",
    "load_balancers": "load_balancer",
    "locations": "location",
    "server_types": "server_type",
    "images": "image",
    "load_balancer_types": "load_balancer_type",
    "actions": "action",
}
READ_ONLY = {"locations", "server_types", "images", "load_balancer_types", "actions"}
_LOCATIONS = [
    ("fsn1", "Falkenstein DC Park 1", "DE", "Falkenstein", 50.47612, 12.370071, "eu-central"),
    ("nbg1", "Nuremberg DC Park 1", "DE", "Nuremberg", 49.452102, 11.076665, "eu-central"),
    ("hel1", "Helsinki DC Park 1", "FI", "Helsinki", 60.169855, 24.938379, "eu-central"),
    ("ash", "Ashburn, VA", "US", "Ashburn, VA", 39.045821, -77.487073, "us-east"),
    ("hil", "Hillsboro, OR", "US", "Hillsboro, OR", 45.54222, -122.95194, "us-west"),
    ("sin", "Singapore", "SG", "Singapore", 1.283333, 103.833333, "ap-southeast"),
]
_SERVER_TYPES = [("cx23", 2, 4.0, 40), ("cx33", 4, 8.0, 80), ("cx43", 8, 16.0, 160)]


class ApiError(Exception):
    """An error answer in the API's envelope."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def invalid(field_name: str, message: str) -> ApiError:
    details = {"fields": [{"name": field_name, "messages": [message]}]}
    return ApiError(400, "invalid_input", f"invalid input in field '{field_name}'", details)


@dataclass
class RateLimit:
    """Hetzner's token bucket: `limit` requests, refilled at `per_second`."""

    limit: int = 3600
    per_second: float = 1.0
    remaining: float = 3600.0
    stamp: float = field(default_factory=time.time)

    def take(self) -> bool:
        """Spend one request if there is one left."""
        now = time.time()
        self.remaining = min(self.limit, self.remaining + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.remaining < 1:
            return False
        self.remaining -= 1
        return True

    def headers(self) -> dict[str, str]:
        """`RateLimit-Reset`: the UNIX time at which the bucket is full again."""
        reset = self.stamp + (self.limit - self.remaining) / self.per_second
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(int(self.remaining)),
            "RateLimit-Reset": str(math.ceil(reset)),
        }


@dataclass
class Seen:
    """A request as the stand-in saw it, and the status it answered."""

    method: str
    path: str
    status: int = 0


@dataclass
class Fault:
    """An error the next matching requests get, for testing failure paths."""

    method: str
    path: re.Pattern[str]
    error: ApiError
    times: int = 1


def matches(labels: dict[str, str], selector: str) -> bool:
    """Hetzner label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, joined by commas (AND)."""
    for expr in filter(None, (e.strip() for e in selector.split(","))):
        if "!=" in expr:
            key, value = expr.split("!=", 1)
            ok = labels.get(key.strip()) != value.strip()
        elif "=" in expr:
            key, value = re.split("==?", expr, maxsplit=1)
            ok = labels.get(key.strip()) == value.strip()
        elif expr.startswith("!"):
            ok = expr[1:].strip() not in labels
        else:
            ok = expr in labels
        if not ok:
            return False
    return True


class HetznerState:
    """Everything the stand-in holds: resources by collection, requests seen, faults to inject."""

    def __init__(self, token: str, backend: ServerBackend | None = None) -> None:
        self.token = token
        self.backend: ServerBackend = backend or RecordingBackend()
        self.rows: dict[str, dict[int, Row]] = {name: {} for name in SINGULAR}
        self.requests: list[Seen] = []
        self.faults: list[Fault] = []
        self.rate_limit = RateLimit()
        self.lock = threading.RLock()  # resources
        self.gate_lock = threading.Lock()  # request log, rate limit, faults (never held long)
        self._ids = 0
        self._addresses = 0
        self._catalogue()

    # -- bookkeeping ------------------------------------------------------------------------
    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def inject(self, method: str, path: str, error: ApiError, times: int = 1) -> None:
        """Make the next `times` requests `method` on a path matching `path` fail."""
        self.faults.append(Fault(method, re.compile(path), error, times))

    def take_fault(self, method: str, path: str) -> ApiError | None:
        for fault in self.faults:
            if fault.method == method and fault.path.search(path) and fault.times > 0:
                fault.times -= 1
                return fault.error
        return None

    def add(self, collection: str, row: Row) -> Row:
        name = row.get("name")
        taken = any(r.get("name") == name for r in self.rows[collection].values())
        if name is not None and collection not in READ_ONLY and taken:
            raise ApiError(409, "uniqueness_error", f"name '{name}' is already used")
        row.setdefault("id", self.next_id())
        self.rows[collection][row["id"]] = row
        return row

    def get(self, collection: str, ident: int | str) -> Row:
        rows = self.rows[collection]
        if isinstance(ident, int) or str(ident).isdigit():
            row = rows.get(int(ident))
        else:
            row = next((r for r in rows.values() if r.get("name") == ident), None)
        if row is None:
            raise ApiError(404, "not_found", f"{SINGULAR[collection]} with ID '{ident}' not found")
        return row

    def action(self, command: str, *resources: tuple[int, str]) -> Row:
        now = _now()
        return self.add(
            "actions",
            {
                "command": command,
                "status": "success",
                "progress": 100,
                "started": now,
                "finished": now,
                "resources": [{"id": i, "type": t} for i, t in resources],
                "error": None,
            },
        )

    def address(self) -> tuple[str, str]:
        self._addresses += 1
        n = self._addresses
        return f"198.51.100.{n % 250 + 1}", f"2001:db8:{n:x}::/64"

    def _catalogue(self) -> None:
        for name, desc, country, city, lat, lon, zone in _LOCATIONS:
            self.add(
                "locations",
                {
                    "name": name,
                    "description": desc,
                    "country": country,
                    "city": city,
                    "latitude": lat,
                    "longitude": lon,
                    "network_zone": zone,
                },
            )
        for name, cores, memory, disk in _SERVER_TYPES:
            self.add("server_types", _server_type(name, cores, memory, disk))
        self.add("images", _image("debian-13", "Debian 13", "13"))
        self.add("images", _image("debian-12", "Debian 12", "12"))
        self.add(
            "load_balancer_types",
            {
                "name": "lb11",
                "description": "LB11",
                "max_connections": 10000,
                "max_services": 5,
                "max_targets": 25,
                "max_assigned_certificates": 10,
                "deprecated": None,
                "prices": [],
            },
        )


def _server_type(name: str, cores: int, memory: float, disk: int) -> Row:
    return {
        "name": name,
        "description": name.upper(),
        "category": "cost_optimized",
        "cores": cores,
        "memory": memory,
        "disk": disk,
        "prices": [],
        "storage_type": "local",
        "cpu_type": "shared",
        "architecture": "x86",
        "deprecated": False,
        "deprecation": None,
        "locations": [{"id": i + 1, "name": loc[0], "deprecation": None, "available": True,
                       "recommended": True} for i, loc in
                      enumerate(_LOCATIONS)],
    }  # fmt: skip


def _image(name: str, description: str, version: str) -> Row:
    return {
        "type": "system",
        "status": "available",
        "name": name,
        "description": description,
        "image_size": None,
        "disk_size": 5,
        "created": "2025-08-10T00:00:00Z",
        "created_from": None,
        "bound_to": None,
        "os_flavor": "debian",
        "os_version": version,
        "rapid_deploy": True,
        "protection": {"delete": False},
        "deprecated": None,
        "deleted": None,
        "labels": {},
        "architecture": "x86",
    }


def _labels(body: Row) -> dict[str, str]:
    labels = body.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise invalid("labels", "labels must be an object of strings")
    return labels


def _required(body: Row, *names: str) -> None:
    for name in names:
        if body.get(name) in (None, ""):
            raise invalid(name, "is required")


def _location(state: HetznerState, ident: Any) -> Row:
    try:
        return state.get("locations", ident)
    except ApiError:
        raise invalid("location", f"location '{ident}' not found") from None


# -- creators: request body -> stored row (+ actions) ---------------------------------------
def create_ssh_key(state: HetznerState, body: Row) -> Row:
    _required(body, "name", "public_key")
    parts = str(body["public_key"]).split()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (IndexError, ValueError):
        raise invalid("public_key", "invalid public key") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    row = {
        "name": body["name"],
        "public_key": body["public_key"],
        "fingerprint": ":".join(digest[i : i + 2] for i in range(0, 32, 2)),
        "labels": _labels(body),
        "created": _now(),
    }
    return {"ssh_key": state.add("ssh_keys", row)}


def _rule(raw: Row) -> Row:
    if raw.get("direction") not in ("in", "out"):
        raise invalid("rules", "direction must be 'in' or 'out'")
    if raw.get("protocol") not in ("tcp", "udp", "icmp", "esp", "gre"):
        raise invalid("rules", "unknown protocol")
    return {
        "direction": raw["direction"],
        "protocol": raw["protocol"],
        "port": raw.get("port"),
        "source_ips": raw.get("source_ips", []),
        "destination_ips": raw.get("destination_ips", []),
        "description": raw.get("description"),
    }


def create_firewall(state: HetznerState, body: Row) -> Row:
    _required(body, "name")
    row = {
        "name": body["name"],
        "labels": _labels(body),
        "created": _now(),
        "rules": [_rule(r) for r in body.get("rules", [])],
        "applied_to": list(body.get("apply_to", [])),
    }
    state.add("firewalls", row)
    return {
        "firewall": row,
        "actions": [state.action("set_firewall_rules", (row["id"], "firewall"))],
    }


def create_network(state: HetznerState, body: Row) -> Row:
    _required(body, "name", "ip_range")
    network = ipaddress.ip_network(body["ip_range"])
    row = {
        "name": body["name"],
        "ip_range": body["ip_range"],
        "subnets": [],
        "routes": [],
        "servers": [],
        "load_balancers": [],
        "protection": {"delete": False},
        "labels": _labels(body),
        "created": _now(),
        "expose_routes_to_vswitch": False,
    }
    for subnet in body.get("subnets", []):
        row["subnets"].append(_subnet(network, subnet))
    return {"network": state.add("networks", row)}


def _subnet(network: ipaddress.IPv4Network | ipaddress.IPv6Network, raw: Row) -> Row:
    subnet = ipaddress.ip_network(raw.get("ip_range", ""))
    if not subnet.subnet_of(network):  # type: ignore[arg-type]
        raise invalid("subnets", f"{subnet} is not inside {network}")
    return {
        "type": raw.get("type", "cloud"),
        "ip_range": str(subnet),
        "network_zone": raw.get("network_zone"),
        "gateway": str(next(network.hosts())),
        "vswitch_id": None,
    }


def create_placement_group(state: HetznerState, body: Row) -> Row:
    _required(body, "name", "type")
    row = {
        "name": body["name"],
        "type": body["type"],
        "labels": _labels(body),
        "servers": [],
        "created": _now(),
    }
    return {"placement_group": state.add("placement_groups", row), "action": None}


def create_primary_ip(state: HetznerState, body: Row) -> Row:
    _required(body, "name", "type")
    if body["type"] not in ("ipv4", "ipv6"):
        raise invalid("type", "must be ipv4 or ipv6")
    v4, v6 = state.address()
    ip = v4 if body["type"] == "ipv4" else v6
    row = {
        "name": body["name"],
        "type": body["type"],
        "ip": ip,
        "dns_ptr": [],
        "blocked": False,
        "protection": {"delete": False},
        "labels": _labels(body),
        "created": _now(),
        "location": _location(state, body.get("location")),
        "assignee_id": None,
        "assignee_type": body.get("assignee_type", "server"),
        "auto_delete": bool(body.get("auto_delete", False)),
    }
    state.add("primary_ips", row)
    return {
        "primary_ip": row,
        "action": state.action("create_primary_ip", (row["id"], "primary_ip")),
    }


def create_volume(state: HetznerState, body: Row) -> Row:
    _required(body, "name", "size")
    if not 10 <= int(body["size"]) <= 10240:
        raise invalid("size", "size must be between 10 and 10240 GB")
    row = {
        "name": body["name"],
        "size": int(body["size"]),
        "server": None,
        "location": _location(state, body.get("location")),
        "protection": {"delete": False},
        "labels": _labels(body),
        "status": "available",
        "format": body.get("format"),
        "created": _now(),
    }
    state.add("volumes", row)
    row["linux_device"] = f"/dev/disk/by-id/scsi-0HC_Volume_{row['id']}"
    action = state.action("create_volume", (row["id"], "volume"))
    return {"volume": row, "action": action, "next_actions": []}


def create_server(state: HetznerState, body: Row) -> Row:
    _required(body, "name", "server_type", "image")
    location = _location(state, body.get("location", "fsn1"))
    try:
        server_type = state.get("server_types", body["server_type"])
        image = state.get("images", body["image"])
    except ApiError as exc:
        raise invalid("server_type/image", exc.message) from None
    keys = [state.get("ssh_keys", k)["public_key"] for k in body.get("ssh_keys", [])]
    networks = [state.get("networks", n) for n in body.get("networks", [])]
    row: Row = {
        "name": body["name"],
        "status": "running",
        "created": _now(),
        "server_type": server_type,
        "location": location,
        "image": image,
        "iso": None,
        "rescue_enabled": False,
        "locked": False,
        "backup_window": None,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": 21990232555520,
        "protection": {"delete": False, "rebuild": False},
        "labels": _labels(body),
        "volumes": [],
        "load_balancers": [],
        "primary_disk_size": server_type["disk"],
        "placement_group": None,
        "private_net": [],
    }
    state.add("servers", row)
    try:
        _wire_server(state, row, body, networks)
        _public_ips(state, row, body.get("public_net") or {})
        address = state.backend.create_server(
            row["name"], image["name"], keys, body.get("user_data"),
            [net["ip"] for net in row["private_net"]],
        )  # fmt: skip
    except Exception:
        _delete_server(state, row)
        raise
    if row["_public"]["ipv4"] is not None:  # the backend decides where the machine answers
        row["_public"]["ipv4"]["ip"] = address.ipv4
    action = state.action("create_server", (row["id"], "server"))
    return {"server": row, "action": action, "next_actions": [], "root_password": None}


def _wire_server(state: HetznerState, row: Row, body: Row, networks: list[Row]) -> None:
    for network in networks:
        row["private_net"].append(_attach(network, row["id"]))
    if body.get("placement_group") is not None:
        group = state.get("placement_groups", body["placement_group"])
        group["servers"].append(row["id"])
        row["placement_group"] = group
    for volume_id in body.get("volumes", []):
        volume = state.get("volumes", volume_id)
        volume["server"] = row["id"]
        row["volumes"].append(volume["id"])


def _next_ip(network: Row) -> str:
    """The first free address of the network's first subnet (its .1 is the gateway's)."""
    subnet = ipaddress.ip_network(network["subnets"][0]["ip_range"])
    used = network.setdefault("_used", [])
    ip = next(str(h) for h in list(subnet.hosts())[1:] if str(h) not in used)
    used.append(ip)
    return ip


def _attach(network: Row, server_id: int) -> Row:
    network["servers"].append(server_id)
    return {
        "network": network["id"],
        "ip": _next_ip(network),
        "alias_ips": [],
        "mac_address": f"86:00:00:00:{server_id // 256 % 256:02x}:{server_id % 256:02x}",
    }


def _public_ips(state: HetznerState, row: Row, public_net: Row) -> None:
    """Assign the requested primary IPs, or new auto-deleted ones as the real API does."""
    ips: dict[str, Row | None] = {}
    for family in ("ipv4", "ipv6"):
        if public_net.get(family) is not None:
            primary = state.get("primary_ips", public_net[family])
            if primary["assignee_id"] is not None:
                raise ApiError(409, "conflict", f"primary IP {primary['id']} is already assigned")
        elif public_net.get(f"enable_{family}", True):
            body = {"name": f"primary_ip-{state._ids + 1}", "type": family,
                    "location": row["location"]["name"], "auto_delete": True}  # fmt: skip
            primary = create_primary_ip(state, body)["primary_ip"]
        else:
            ips[family] = None
            continue
        primary["assignee_id"] = row["id"]
        ips[family] = primary
    row["_public"] = ips


def _delete_server(state: HetznerState, row: Row) -> None:
    for primary in list(state.rows["primary_ips"].values()):
        if primary["assignee_id"] == row["id"]:
            primary["assignee_id"] = None
            if primary["auto_delete"]:
                state.rows["primary_ips"].pop(primary["id"])
    for net in row["private_net"]:
        network = state.rows["networks"][net["network"]]
        network["servers"].remove(row["id"])
        network["_used"].remove(net["ip"])
    for volume in state.rows["volumes"].values():
        if volume["server"] == row["id"]:
            volume["server"] = None
    if row["placement_group"] is not None:
        row["placement_group"]["servers"].remove(row["id"])
    state.rows["servers"].pop(row["id"], None)


def create_load_balancer(state: HetznerState, body: Row) -> Row:
    _required(body, "name", "load_balancer_type", "location")
    v4, v6 = state.address()
    row: Row = {
        "name": body["name"],
        "load_balancer_type": state.get("load_balancer_types", body["load_balancer_type"]),
        "location": _location(state, body["location"]),
        "public_net": {
            "enabled": body.get("public_interface", True),
            "ipv4": {"ip": v4, "dns_ptr": None},
            "ipv6": {"ip": v6.split("/")[0] + "1", "dns_ptr": None},
        },
        "private_net": [],
        "protection": {"delete": False},
        "labels": _labels(body),
        "targets": [_lb_target(t) for t in body.get("targets", [])],
        "services": [_lb_service(s) for s in body.get("services", [])],
        "algorithm": body.get("algorithm") or {"type": "round_robin"},
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": 21990232555520,
        "created": _now(),
    }
    state.add("load_balancers", row)
    if body.get("network") is not None:
        network = state.get("networks", body["network"])
        row["private_net"].append({"network": network["id"], "ip": _next_ip(network)})
        network["load_balancers"].append(row["id"])
    return {"load_balancer": row, "action": state.action("create_load_balancer")}


def _lb_target(raw: Row) -> Row:
    if raw.get("type") != "label_selector":
        raise invalid("targets", "the stand-in supports label_selector targets")
    return {
        "type": "label_selector",
        "label_selector": {"selector": raw["label_selector"]["selector"]},
        "use_private_ip": bool(raw.get("use_private_ip", False)),
    }


def _lb_service(raw: Row) -> Row:
    if raw.get("protocol") != "tcp":
        raise invalid("services", "the stand-in supports tcp services")
    return {
        "protocol": "tcp",
        "listen_port": raw["listen_port"],
        "destination_port": raw["destination_port"],
        "proxyprotocol": bool(raw.get("proxyprotocol", False)),
        "health_check": {"protocol": "tcp", "port": raw["destination_port"], "interval": 15,
                         "timeout": 10, "retries": 3, "http": None} | raw.get("health_check", {}),
        "http": None,
    }  # fmt: skip


CREATORS: dict[str, Callable[[HetznerState, Row], Row]] = {
    "ssh_keys": create_ssh_key,
    "firewalls": create_firewall,
    "networks": create_network,
    "placement_groups": create_placement_group,
    "primary_ips": create_primary_ip,
    "volumes": create_volume,
    "servers": create_server,
    "load_balancers": create_load_balancer,
}


# -- rendering: stored rows -> API JSON (references resolved at read time) --------------------
def render(state: HetznerState, collection: str, row: Row) -> Row:
    out = {k: v for k, v in row.items() if not k.startswith("_")}
    if collection == "servers":
        out["public_net"] = _server_public_net(state, row)
        out["placement_group"] = row["placement_group"] and dict(row["placement_group"])
    elif collection == "firewalls":
        out["applied_to"] = [_applied(state, a) for a in row["applied_to"]]
    elif collection == "load_balancers":
        out["targets"] = [_lb_resolved(state, t) for t in row["targets"]]
    return out


def _server_public_net(state: HetznerState, row: Row) -> Row:
    public = row["_public"]
    v4, v6 = public["ipv4"], public["ipv6"]
    return {
        "ipv4": v4 and {"id": v4["id"], "ip": v4["ip"], "blocked": False, "dns_ptr": ""},
        "ipv6": v6 and {"id": v6["id"], "ip": v6["ip"], "blocked": False, "dns_ptr": []},
        "floating_ips": [],
        "firewalls": [
            {"id": fw["id"], "status": "applied"}
            for fw in state.rows["firewalls"].values()
            if row["id"] in _firewall_servers(state, fw)
        ],
    }


def _selected(state: HetznerState, selector: str) -> list[int]:
    return [s["id"] for s in state.rows["servers"].values() if matches(s["labels"], selector)]


def _firewall_servers(state: HetznerState, fw: Row) -> set[int]:
    found: set[int] = set()
    for item in fw["applied_to"]:
        if item["type"] == "server":
            found.add(item["server"]["id"])
        else:
            found.update(_selected(state, item["label_selector"]["selector"]))
    return found


def _applied(state: HetznerState, item: Row) -> Row:
    if item["type"] == "server":
        return {"type": "server", "server": {"id": item["server"]["id"]}}
    ids = _selected(state, item["label_selector"]["selector"])
    return {
        "type": "label_selector",
        "label_selector": dict(item["label_selector"]),
        "applied_to_resources": [{"type": "server", "server": {"id": i}} for i in ids],
    }


def _lb_resolved(state: HetznerState, target: Row) -> Row:
    ids = _selected(state, target["label_selector"]["selector"])
    nested = [{"type": "server", "server": {"id": i}, "use_private_ip": target["use_private_ip"],
               "health_status": []} for i in ids]  # fmt: skip
    return {**target, "targets": nested}


# -- resource actions -----------------------------------------------------------------------
def _protection(state: HetznerState, collection: str, row: Row, body: Row) -> list[Row]:
    for key in row["protection"]:
        if body.get(key) is not None:
            row["protection"][key] = bool(body[key])
    return [state.action("change_protection", (row["id"], SINGULAR[collection]))]


def _server_action(state: HetznerState, row: Row, name: str, body: Row) -> list[Row]:
    backend = state.backend
    if name == "enable_rescue":
        keys = [state.get("ssh_keys", k)["public_key"] for k in body.get("ssh_keys", [])]
        backend.enable_rescue(row["name"], keys)
        row["rescue_enabled"] = True
    elif name == "disable_rescue":
        row["rescue_enabled"] = False
    elif name == "rebuild":
        if row["protection"]["rebuild"]:
            raise ApiError(423, "protected", "server is protected against rebuild")
        row["image"] = state.get("images", body.get("image", ""))
        backend.rebuild(row["name"], row["image"]["name"])
    elif name in ("poweron", "poweroff", "reset"):
        {"poweron": backend.power_on, "poweroff": backend.power_off, "reset": backend.reset}[name](
            row["name"]
        )
        row["status"] = "off" if name == "poweroff" else "running"
    else:
        raise ApiError(404, "not_found", f"unknown server action '{name}'")
    return [state.action(name.replace("poweron", "start_server"), (row["id"], "server"))]


def _firewall_action(state: HetznerState, row: Row, name: str, body: Row) -> list[Row]:
    if name == "set_rules":
        row["rules"] = [_rule(r) for r in body.get("rules", [])]
    elif name == "apply_to_resources":
        row["applied_to"].extend(body.get("apply_to", []))
    elif name == "remove_from_resources":
        gone = body.get("remove_from", [])
        row["applied_to"] = [a for a in row["applied_to"] if a not in gone]
    else:
        raise ApiError(404, "not_found", f"unknown firewall action '{name}'")
    return [state.action(name, (row["id"], "firewall"))]


def act(state: HetznerState, collection: str, ident: int, name: str, body: Row) -> Row:
    row = state.get(collection, ident)
    if name == "change_protection" and "protection" in row:
        actions = _protection(state, collection, row, body)
    elif collection == "servers":
        actions = _server_action(state, row, name, body)
    elif collection == "firewalls":
        actions = _firewall_action(state, row, name, body)
    else:
        raise ApiError(404, "not_found", f"unknown {SINGULAR[collection]} action '{name}'")
    if collection == "firewalls":
        return {"actions": actions}
    if name == "enable_rescue":  # rescue logins also take this password
        return {"action": actions[0], "root_password": secrets.token_urlsafe(12)}
    if name == "rebuild":
        return {"action": actions[0], "root_password": None}
    return {"action": actions[0]}


def delete(state: HetznerState, collection: str, ident: int) -> Row | None:
    row = state.get(collection, ident)
    if row.get("protection", {}).get("delete"):
        raise ApiError(423, "protected", f"{SINGULAR[collection]} is protected against deletion")
    if collection == "servers":
        state.backend.delete_server(row["name"])
        _delete_server(state, row)
        return {"action": state.action("delete_server", (row["id"], "server"))}
    if collection == "primary_ips" and row["assignee_id"] is not None:
        raise ApiError(422, "must_be_unassigned", "primary IP is assigned to a server")
    state.rows[collection].pop(row["id"])
    return None


def listing(state: HetznerState, collection: str, params: dict[str, str]) -> Row:
    rows = list(state.rows[collection].values())
    if "name" in params:
        rows = [r for r in rows if r.get("name") == params["name"]]
    if "label_selector" in params:
        rows = [r for r in rows if matches(r.get("labels", {}), params["label_selector"])]
    if "id" in params:
        rows = [r for r in rows if str(r["id"]) == params["id"]]
    per_page = max(1, min(50, int(params.get("per_page", 25))))
    last = max(1, math.ceil(len(rows) / per_page))
    page = max(1, int(params.get("page", 1)))
    chunk = rows[(page - 1) * per_page : page * per_page]
    pagination = {
        "page": page,
        "per_page": per_page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last else None,
        "last_page": last,
        "total_entries": len(rows),
    }
    items = [render(state, collection, r) for r in chunk]
    return {collection: items, "meta": {"pagination": pagination}}


def update(state: HetznerState, collection: str, ident: int, body: Row) -> Row:
    row = state.get(collection, ident)
    if "name" in body and body["name"] != row["name"]:
        if any(r.get("name") == body["name"] for r in state.rows[collection].values()):
            raise ApiError(409, "uniqueness_error", f"name '{body['name']}' is already used")
        row["name"] = body["name"]
    if "labels" in body:
        row["labels"] = _labels(body)
    return {SINGULAR[collection]: render(state, collection, row)}


# -- HTTP -----------------------------------------------------------------------------------
def create_app(state: HetznerState) -> FastAPI:
    """The API under `/v1`, guarded by the bearer token and the rate limit."""
    app = FastAPI(title="Hetzner Cloud API stand-in", docs_url=None, redoc_url=None)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.middleware("http")
    async def gate(request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await _gate(state, request, call_next)

    def locked(work: Callable[[], Row]) -> Row:
        """Backends may take seconds (booting a machine): off the event loop, one at a time."""
        with state.lock:
            return work()

    def collection(name: str) -> str:
        if name not in SINGULAR:
            raise ApiError(404, "not_found", f"unknown resource '{name}'")
        return name

    @app.get("/v1/{name}")
    def get_list(name: str, request: Request) -> Row:
        with state.lock:
            return listing(state, collection(name), dict(request.query_params))

    @app.get("/v1/{name}/{ident}")
    def get_one(name: str, ident: int) -> Row:
        with state.lock:
            row = state.get(collection(name), ident)
            return {SINGULAR[name]: render(state, name, row)}

    @app.post("/v1/{name}", status_code=201)
    async def post(name: str, request: Request) -> Row:
        body = await _body(request)
        if collection(name) not in CREATORS:
            raise ApiError(405, "method_not_allowed", f"cannot create {name}")
        return await run_in_threadpool(
            locked, lambda: _rendered(state, CREATORS[name](state, body))
        )

    @app.put("/v1/{name}/{ident}")
    async def put(name: str, ident: int, request: Request) -> Row:
        body = await _body(request)
        return await run_in_threadpool(locked, lambda: update(state, collection(name), ident, body))

    @app.delete("/v1/{name}/{ident}", response_model=None)
    def remove(name: str, ident: int) -> Row | Response:
        with state.lock:
            result = delete(state, collection(name), ident)
        return Response(status_code=204) if result is None else result

    @app.post("/v1/{name}/{ident}/actions/{action}", status_code=201)
    async def post_action(name: str, ident: int, action: str, request: Request) -> Row:
        body = await _body(request)
        return await run_in_threadpool(
            locked, lambda: act(state, collection(name), ident, action, body)
        )

    return app


async def _gate(
    state: HetznerState, request: Request, call_next: RequestResponseEndpoint
) -> Response:
    """Log the request, then check token, rate limit and injected faults, like the real API."""
    seen = Seen(request.method, request.url.path)
    with state.gate_lock:
        state.requests.append(seen)
        response = _refusal(state, seen, request.headers.get("authorization"))
    if response is None:
        response = await call_next(request)
        response.headers.update(state.rate_limit.headers())
    seen.status = response.status_code
    return response


def _refusal(state: HetznerState, seen: Seen, authorization: str | None) -> Response | None:
    if authorization != f"Bearer {state.token}":
        return ApiError(401, "unauthorized", "unable to authenticate").response()
    if not state.rate_limit.take():
        error = ApiError(429, "rate_limit_exceeded", "limit of requests exceeded")
        return error.response(state.rate_limit.headers())
    fault = state.take_fault(seen.method, seen.path)
    return None if fault is None else fault.response(state.rate_limit.headers())


async def _body(request: Request) -> Row:
    if not await request.body():
        return {}  # actions such as poweron carry no body
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "json_error", "invalid JSON in request body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "json_error", "request body must be a JSON object")
    return body


def _rendered(state: HetznerState, result: Row) -> Row:
    for collection, singular in SINGULAR.items():
        if isinstance(result.get(singular), dict) and collection not in READ_ONLY:
            result[singular] = render(state, collection, result[singular])
    return result


@contextmanager
def running(token: str, backend: ServerBackend | None = None) -> Iterator[tuple[str, HetznerState]]:
    """Serve a fresh stand-in on a loopback port: yields (API endpoint URL, its state)."""
    state = HetznerState(token, backend)
    with serve_asgi(create_app(state)) as base:
        yield f"{base}/v1", state
