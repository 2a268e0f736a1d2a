"""A lab host: a systemd-nspawn container booting systemd, in its own network namespace.

Wiring of one host (all of it inside namespaces; the operator's network is never touched):
- `tap0` from slirp4netns: outbound traffic (10.0.2.100, gateway 10.0.2.2 = the operator's
  loopback, DNS 10.0.2.3) and SSH forwarded from a loopback port of the operator's machine;
- `enp7s0`, a veth whose peer sits on the lab bridge in the namespace `cloop-lab`: the private
  network, named like a Hetzner server's private interface;
- 169.254.169.254 on `lo`, where the metadata stand-in answers.
Every resource is recorded in the lab state as soon as it exists, so `lab down` can undo a
half-finished `up`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from infra.lab import state
from infra.lab.paths import STATE_DIR
from infra.lab.rootfs import ensure_rootfs

BRIDGE_NETNS = "cloop-lab"
BRIDGE = "br0"
SLIRP_GATEWAY = "10.0.2.2"
SLIRP_DNS = "10.0.2.3"
SLIRP_GUEST = "10.0.2.100"
METADATA_IP = "169.254.169.254"
HOSTS_DIR = STATE_DIR / "hosts"
KNOWN_HOSTS = STATE_DIR / "known_hosts"
BOOT_TIMEOUT_S = 90.0


class LabError(Exception):
    """A lab step failed; the message names the step and the host."""


def run(*cmd: str, step: str, host: str = "lab") -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LabError(f"[{host}] {step}: {' '.join(cmd[:4])}... failed: {detail[-1:] or '?'}")
    return result.stdout


def netns_of(name: str) -> str:
    return f"cloop-lab-h-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def spawn(cmd: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> int:
    """Start a long-lived process in its own session (it outlives `lab up`) and record it."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )  # fmt: skip
    with state.editing() as st:
        st.setdefault("processes", []).append(state.process_record(proc.pid, what))
    return proc.pid


def ensure_bridge() -> None:
    """The lab's private network: one bridge in a namespace of its own."""
    if not Path(f"/run/netns/{BRIDGE_NETNS}").exists():
        run("ip", "netns", "add", BRIDGE_NETNS, step="create bridge namespace")
        with state.editing() as st:
            st.setdefault("netns", []).append(BRIDGE_NETNS)
        run("ip", "-n", BRIDGE_NETNS, "link", "add", BRIDGE, "type", "bridge", step="bridge")
        run("ip", "-n", BRIDGE_NETNS, "link", "set", BRIDGE, "up", step="bridge up")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wire(name: str, private_ips: list[str], prefixlen: int, port: int | None) -> int:
    """Create the host's namespace and interfaces; return the loopback port forwarded to SSH."""
    ns = netns_of(name)
    run("ip", "netns", "add", ns, step="create namespace", host=name)
    with state.editing() as st:
        st.setdefault("netns", []).append(ns)
    veth = "vh" + ns[-8:]
    ip = ("ip", "-n", ns)
    run("ip", "-n", BRIDGE_NETNS, "link", "add", veth, "type", "veth", "peer", "name", "enp7s0",
        "netns", ns, step="private interface", host=name)  # fmt: skip
    run("ip", "-n", BRIDGE_NETNS, "link", "set", veth, "master", BRIDGE, "up",
        step="attach to bridge", host=name)  # fmt: skip
    run(*ip, "link", "set", "lo", "up", step="loopback", host=name)
    run(*ip, "addr", "add", f"{METADATA_IP}/32", "dev", "lo", step="metadata address", host=name)
    for address in private_ips:
        run(*ip, "addr", "add", f"{address}/{prefixlen}", "dev", "enp7s0",
            step="private address", host=name)  # fmt: skip
    run(*ip, "link", "set", "enp7s0", "up", step="private interface up", host=name)
    return start_slirp(name, ns, port)


def start_slirp(name: str, ns: str, port: int | None) -> int:
    """Outbound network and the SSH port forward, both through slirp4netns."""
    host_dir = HOSTS_DIR / name
    sock = host_dir / "slirp.sock"
    spawn(["slirp4netns", "--configure", "--mtu=65520", f"--api-socket={sock}",
           "--netns-type=path", f"/run/netns/{ns}", "tap0"],
          host_dir / "slirp.log", f"slirp4netns {name}")  # fmt: skip
    wait_for(sock.exists, 10, f"[{name}] slirp4netns: API socket never appeared")
    port = port or free_port()
    forward(name, port, 22)
    return port


def forward(name: str, host_port: int, guest_port: int) -> None:
    """Forward a loopback port of the operator's machine to a port of the host (slirp)."""
    request = {"execute": "add_hostfwd", "arguments": {
        "proto": "tcp", "host_addr": "127.0.0.1", "host_port": host_port,
        "guest_port": guest_port}}  # fmt: skip
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(HOSTS_DIR / name / "slirp.sock"))
        client.sendall(json.dumps(request).encode())
        reply = json.loads(client.recv(4096))
    if "error" in reply:
        raise LabError(f"[{name}] port forward to {guest_port}: {reply['error']}")


def wait_for(check: Any, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise LabError(message)
        time.sleep(0.2)


def prepare_root(name: str, ssh_keys: list[str]) -> Path:
    """Overlay the cached image and put in what Hetzner's image creation puts in: name, keys."""
    rootfs, _ = ensure_rootfs()
    host_dir = HOSTS_DIR / name
    root, upper, work = host_dir / "root", host_dir / "upper", host_dir / "work"
    for directory in (root, upper, work):
        directory.mkdir(parents=True, exist_ok=True)
    run("mount", "-t", "overlay", "overlay", "-o",
        f"lowerdir={rootfs},upperdir={upper},workdir={work}", str(root),
        step="mount root overlay", host=name)  # fmt: skip
    with state.editing() as st:
        st.setdefault("mounts", []).append(str(root))
    (root / "etc/hostname").write_text(name + "\n")
    (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {name}\n")
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text(f"nameserver {SLIRP_DNS}\n")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text("".join(k.strip() + "\n" for k in ssh_keys))
    # All forwarded connections come from the slirp gateway: no per-source penalties.
    (root / "etc/ssh/sshd_config.d/lab.conf").write_text("PerSourcePenalties no\n")
    run("ssh-keygen", "-A", "-f", str(root), step="host keys", host=name)
    return root


def write_metadata(name: str, private_ips: list[str], zone: dict[str, str]) -> Path:
    """The answers of this host's metadata stand-in (Hetzner's keys and shapes)."""
    network = ipaddress.ip_interface(f"{private_ips[0]}/{zone['prefixlen']}").network
    metadata = {
        "availability-zone": zone["availability_zone"],
        "hostname": name,
        "instance-id": int(hashlib.sha256(name.encode()).hexdigest()[:7], 16),
        "local-ipv4": "",
        "public-ipv4": "127.0.0.1",
        "region": zone["region"],
        "public-keys": [],
        "private-networks": [
            {"ip": ip, "alias_ips": [], "interface_num": 1, "network_id": 1,
             "network_name": "cloop-lab", "network": str(network), "subnet": str(network),
             "gateway": str(network.network_address + 1)}
            for ip in private_ips
        ],
    }  # fmt: skip
    path = HOSTS_DIR / name / "metadata.json"
    path.write_text(json.dumps(metadata))
    return path


def boot(
    name: str, ssh_keys: list[str], private_ips: list[str], zone: dict[str, str],
    port: int | None = None,
) -> int:  # fmt: skip
    """Boot the host and wait until SSH answers; return the loopback SSH port."""
    (HOSTS_DIR / name).mkdir(parents=True, exist_ok=True)
    with state.editing() as st:
        st.setdefault("host_dirs", []).append(str(HOSTS_DIR / name))
    ensure_bridge()
    root = prepare_root(name, ssh_keys)
    port = wire(name, private_ips, int(zone["prefixlen"]), port)
    spawn(["ip", "netns", "exec", netns_of(name), sys.executable, "-m", "infra.standins.metadata",
           "--data", str(write_metadata(name, private_ips, zone))],
          HOSTS_DIR / name / "metadata.log", f"metadata {name}")  # fmt: skip
    record_host_key(name, root, port)
    with state.editing() as st:
        st.setdefault("hosts", {})[name] = {"ssh_port": port, "netns": netns_of(name)}
    power_on(name)
    return port


def power_on(name: str) -> None:
    """Start the container (systemd as PID 1) and wait until its sshd answers."""
    port = int(state.read()["hosts"][name]["ssh_port"])
    env = os.environ | {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
    nspawn = spawn(["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
           f"--directory={HOSTS_DIR / name / 'root'}",
           f"--network-namespace-path=/run/netns/{netns_of(name)}",
           f"--machine={name}", "--console=passive", "--resolv-conf=off",
           # kernel audit is host-wide: a container's auditd must never take it over
           "--drop-capability=CAP_AUDIT_CONTROL",
           # the namespace is the host's own: its firewall and network settings are its to set
           "--capability=CAP_NET_ADMIN"],
          HOSTS_DIR / name / "nspawn.log", f"systemd-nspawn {name}", env=env)  # fmt: skip
    wait_for(lambda: ssh_ready(port), BOOT_TIMEOUT_S, f"[{name}] boot: SSH never answered")
    writable_net_sysctls(name, nspawn)


def power_off(name: str) -> None:
    """Stop the container; its disk (the overlay) and network stay."""
    with state.editing() as st:
        records = [p for p in st.get("processes", []) if p["what"] == f"systemd-nspawn {name}"]
        st["processes"] = [p for p in st.get("processes", []) if p not in records]
    for record in records:
        state.stop(record)


def writable_net_sysctls(name: str, nspawn_pid: int) -> None:
    """Let the host set its own network sysctls, as nspawn's --private-network does.

    The namespace is the host's alone, so its `net.*` keys are the host's to set; the rest of
    /proc/sys stays read-only (host-wide kernel settings are waived in tests/hosts).
    """
    children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    if not children:
        raise LabError(f"[{name}] boot: the container has no init process")
    run("nsenter", "-t", children[0], "-m", "sh", "-c",
        "mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net",
        step="writable network sysctls", host=name)  # fmt: skip


def record_host_key(name: str, root: Path, port: int) -> None:
    """Trust exactly the key generated for this host, nothing learnt over the network."""
    key = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    lines = [ln for ln in _known_hosts() if not ln.startswith(f"[127.0.0.1]:{port} ")]
    KNOWN_HOSTS.write_text(
        "".join(f"{ln}\n" for ln in [*lines, f"[127.0.0.1]:{port} {' '.join(key)}"])
    )


def _known_hosts() -> list[str]:
    return KNOWN_HOSTS.read_text().splitlines() if KNOWN_HOSTS.exists() else []


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def ssh_ready(port: int) -> bool:
    """sshd has sent its banner (the container's sshd, not slirp's bare accept)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def destroy(name: str) -> None:
    """Stop one host and remove everything recorded for it."""
    st = state.read()
    for record in st.get("processes", []):
        if record["what"].endswith(f" {name}"):
            state.stop(record)
    root = HOSTS_DIR / name / "root"
    if os.path.ismount(root):  # stopping nspawn may have unmounted it meanwhile: check again
        subprocess.run(["umount", str(root)], check=False, capture_output=True)
        if os.path.ismount(root):
            run("umount", str(root), step="unmount root", host=name)
    ns = netns_of(name)
    if Path(f"/run/netns/{ns}").exists():
        run("ip", "netns", "del", ns, step="delete namespace", host=name)
    shutil.rmtree(HOSTS_DIR / name, ignore_errors=True)
    with state.editing() as st:
        st["processes"] = [p for p in st.get("processes", []) if not p["what"].endswith(f" {name}")]
        st["netns"] = [n for n in st.get("netns", []) if n != ns]
        st["mounts"] = [m for m in st.get("mounts", []) if m != str(root)]
        st["host_dirs"] = [d for d in st.get("host_dirs", []) if d != str(HOSTS_DIR / name)]
        st.get("hosts", {}).pop(name, None)
