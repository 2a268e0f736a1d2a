"""Build the evidence report: claims.toml x collected tests x their last results.

Tests are found by collecting the suite (`pytest --collect-only` with the evidence plugin
writing each test's claim markers); results come from the plugin's results file. A claim is
*proven* when it has tests and all of them last passed, *failing* when one failed, *not run*
when its tests have no result yet, and *UNPROVEN* when no test names it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.docs import to_html
from infra.evidence.pytest_plugin import REPO, RESULTS

CLAIMS = REPO / "claims.toml"
DEFAULT_HTML = REPO / "evidence.html"


@dataclass(frozen=True)
class Proof:
    test: str
    outcome: str  # passed / failed / error / skipped / not run
    at: str


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    text: str
    layers: tuple[str, ...]
    proofs: tuple[Proof, ...]

    @property
    def status(self) -> str:
        outcomes = {p.outcome for p in self.proofs}
        if not self.proofs:
            return "UNPROVEN"
        if outcomes & {"failed", "error"}:
            return "failing"
        if outcomes == {"passed"}:
            return "proven"
        return "not run" if outcomes <= {"not run"} else "partly run"


def collect(paths: list[str]) -> dict[str, list[str]]:
    """{test node id: claim IDs} of the suite, by collecting it with the evidence plugin."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "claims.json"
        command = [
            *(sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"),
            *("-p", "infra.evidence.pytest_plugin"),
            *("--continue-on-collection-errors", f"--evidence-claims={target}", *paths),
        ]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        if not target.is_file():
            raise SystemExit(f"error: collecting the tests failed:\n{done.stdout[-2000:]}")
        found: dict[str, list[str]] = json.loads(target.read_text())
        return found


def build(
    claims_toml: Path, collected: dict[str, list[str]], results: dict[str, Any]
) -> list[Claim]:
    report = []
    for raw in tomllib.loads(claims_toml.read_text())["claim"]:
        tests = sorted(node for node, ids in collected.items() if raw["id"] in ids)
        proofs = tuple(
            Proof(t, results.get(t, {}).get("outcome", "not run"), results.get(t, {}).get("at", ""))
            for t in tests
        )
        report.append(Claim(raw["id"], raw["section"], raw["claim"], tuple(raw["layers"]), proofs))
    return report


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(claims: list[Claim]) -> str:
    counts = {s: sum(c.status == s for c in claims) for s in ("proven", "failing", "UNPROVEN")}
    lines = [
        "# Evidence report",
        "",
        f"{len(claims)} claims: {counts['proven']} proven, {counts['failing']} failing, "
        f"{counts['UNPROVEN']} unproven (no test), "
        f"{len(claims) - sum(counts.values())} with tests not (all) run yet.",
        "",
        "| Claim | Status | Layers | Tests |",
        "|---|---|---|---|",
    ]
    for c in claims:
        status = f"**{c.status}**" if c.status in {"UNPROVEN", "failing"} else c.status
        lines.append(f"| {c.id} | {status} | {', '.join(c.layers)} | {len(c.proofs)} |")
    for c in claims:
        lines += ["", f"## {c.id}: {c.status}", "", f"{c.section}. {c.text}", ""]
        if not c.proofs:
            lines.append("No test names this claim: **unproven**.")
        lines += [f"- `{p.test}`: {p.outcome}" + (f" ({p.at})" if p.at else "") for p in c.proofs]
    return "\n".join(lines) + "\n"


def main(html: Path | None = None, argv: list[str] | None = None) -> int:
    """Print the Markdown report, write the HTML one; exit 1 with --strict if any claim is
    unproven or failing."""
    parser = argparse.ArgumentParser(prog="evidence", description=__doc__)
    parser.add_argument("--html", type=Path, default=html or DEFAULT_HTML)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--claims", type=Path, default=CLAIMS)
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("paths", nargs="*", default=["tests"])
    args = parser.parse_args(argv if argv is not None else [])
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    claims = build(args.claims, collect(args.paths), results)
    text = markdown(claims)
    sys.stdout.write(text)
    args.html.write_text(to_html(text))
    print(f"\nHTML report: {args.html}", file=sys.stderr)
    bad = any(c.status in {"UNPROVEN", "failing"} for c in claims)
    return 1 if args.strict and bad else 0


if __name__ == "__main__":
    raise SystemExit(main(argv=sys.argv[1:]))
