"""Provisioning a 5-host inventory against the Hetzner API stand-in: plan, apply, re-apply.

Baseline (same run): the mean round trip of one GET through the same hcloud client and stand-in,
so the figures read as "N calls of about this cost" on any machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from infra import inventory
from infra.inventory import Host, Inventory
from infra.provision import provision
from infra.provision.client import make_client
from infra.standins.hetzner import running

ROUNDS = 3
TOKEN = "bench-token"  # noqa: S105 (a throw-away stand-in's token)


def five_hosts(key_file: Path) -> Inventory:
    """Production's data with three web hosts (edge + app) and two database hosts."""
    base = inventory.load("production").with_data(ssh_keys={"operator": str(key_file)})
    web = [Host(name=f"cloop-prod-web-{i}", roles=frozenset({"edge", "app"})) for i in (1, 2, 3)]
    db = [Host(name=f"cloop-prod-db-{i}", roles=frozenset({"db"})) for i in (1, 2)]
    return base.model_copy(update={"hosts": web + db})


def one_round(inv: Inventory, tmp: Path) -> dict[str, float | Counter[tuple[str, str]]]:
    state = tmp / f"state-{time.monotonic_ns()}.json"
    quiet = {"token": TOKEN, "state_path": state, "out": lambda _line: None}
    with running(TOKEN) as (endpoint, _):
        client, _ = make_client(TOKEN, endpoint)
        started = time.perf_counter()
        for _ in range(50):
            client.locations.get_by_name("hel1")
        baseline = (time.perf_counter() - started) / 50
        started = time.perf_counter()
        provision(inv, endpoint=endpoint, dry_run=True, **quiet)  # type: ignore[arg-type]
        plan_s = time.perf_counter() - started
        started = time.perf_counter()
        _, calls = provision(inv, endpoint=endpoint, **quiet)  # type: ignore[arg-type]
        apply_s = time.perf_counter() - started
        started = time.perf_counter()
        _, again = provision(inv, endpoint=endpoint, **quiet)  # type: ignore[arg-type]
        reapply_s = time.perf_counter() - started
    return {"baseline": baseline, "plan": plan_s, "apply": apply_s, "reapply": reapply_s,
            "calls": calls.calls, "again": again.calls}  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "operator.pub"
        public = Ed25519PrivateKey.generate().public_key()
        key.write_bytes(public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH))
        inv = five_hosts(key)
        rounds = [one_round(inv, Path(tmp)) for _ in range(ROUNDS)]

    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in rounds)  # type: ignore[arg-type]

    calls: Counter[tuple[str, str]] = rounds[-1]["calls"]  # type: ignore[assignment]
    print(f"5 hosts, {ROUNDS} rounds (median); API calls of one apply per resource collection:")
    per_collection: Counter[str] = Counter()
    for (method, collection), n in sorted(calls.items()):
        per_collection[collection] += n
        print(f"  {method:<6} {collection:<18} {n:>4}")
    print("  totals: " + ", ".join(f"{c}={n}" for c, n in sorted(per_collection.items())))
    again: Counter[tuple[str, str]] = rounds[-1]["again"]  # type: ignore[assignment]
    writes = sum(n for (m, _), n in again.items() if m != "GET")
    print(f"baseline: one GET round trip {median('baseline') * 1000:.2f} ms")
    print(
        f"plan_s={median('plan'):.3f} apply_s={median('apply'):.3f} "
        f"reapply_s={median('reapply'):.3f} calls={sum(calls.values())} "
        f"reapply_calls={sum(again.values())} reapply_writes={writes} "
        f"baseline_call_ms={median('baseline') * 1000:.2f}"
    )


if __name__ == "__main__":
    main()
