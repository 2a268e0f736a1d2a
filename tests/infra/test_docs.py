"""Compliance documents generated from the inventories, and their agreement with the hosts'
egress allow-list and the app's AI settings."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.ai.settings import NEBIUS_EU_BASE_URL
from infra.docs import render_markdown, residency_rows, to_html
from infra.inventory import Inventory, egress_allowlist, load
from infra.provision.desired import desired_resources
from tests.conftest import REPO

THREE = ["Hetzner Online GmbH", "Nebius B.V.", "Let's Encrypt (ISRG)"]
ALL_ROLES = frozenset({"edge", "app", "db"})


def table(markdown: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after `heading`."""
    lines = markdown.split(heading, 1)[1].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines[start + 2 : end]]


def documented_endpoints(inv: Inventory) -> set[str]:
    markdown = render_markdown(inv)["subprocessors"]
    rows = table(markdown, "## Endpoints each subprocessor is reached at")
    return {row[1] for row in rows if len(row) == 5}


@pytest.mark.claim("SUB-1")
@pytest.mark.parametrize("name", ["production", "staging", "lab"])
def test_exactly_three_subprocessors_are_listed(name: str) -> None:
    markdown = render_markdown(load(name))["subprocessors"]
    listed = [row[0] for row in table(markdown, "# Subprocessors of Cloop")]
    assert listed == THREE
    assert "Cloop uses 3 subprocessors" in markdown
    html = to_html(markdown)
    assert [n.replace("'", "&#x27;") in html or n in html for n in THREE] == [True] * 3


@pytest.mark.claim("SUB-1")
def test_documents_and_egress_allowlist_come_from_the_same_data() -> None:
    production = load("production")
    allowed = {f"{ep.host}:{ep.port}" for ep in egress_allowlist(production, ALL_ROLES)}
    assert documented_endpoints(production) == allowed

    extra = production.data.model_dump()["subprocessors"] + [
        {"name": "Example Analytics Inc.", "country": "US", "processing": "USA",
         "purpose": "analytics", "personal_data": "visits",
         "endpoints": [{"host": "tracker.example", "port": 443, "protocol": "tcp",
                        "roles": ["app"], "purpose": "tracking"}]},
    ]  # fmt: skip
    changed = production.with_data(subprocessors=extra)
    assert "tracker.example:443" in documented_endpoints(changed)
    assert "tracker.example" in {ep.host for ep in egress_allowlist(changed, frozenset({"app"}))}
    assert "Cloop uses 4 subprocessors" in render_markdown(changed)["subprocessors"]


def test_egress_allowlist_follows_the_hosts_roles() -> None:
    production = load("production")
    db_only = {ep.host for ep in egress_allowlist(production, frozenset({"db"}))}
    assert "api.tokenfactory.nebius.com" not in db_only
    assert "acme-v02.api.letsencrypt.org" not in db_only
    assert "hel1.your-objectstorage.com" in db_only
    edge = {ep.host for ep in egress_allowlist(production, frozenset({"edge"}))}
    assert "acme-v02.api.letsencrypt.org" in edge
    assert "api.tokenfactory.nebius.com" not in edge


@pytest.mark.claim("RES-1", "RES-3")
@pytest.mark.parametrize("name", ["production", "staging", "lab"])
def test_residency_table_lists_every_resource_in_helsinki(name: str) -> None:
    inv = load(name)
    rows = table(render_markdown(inv)["residency"], "# Data residency")
    expected = {(d.kind.replace("_", " "), d.name) for d in desired_resources(inv)}
    expected |= {("bucket", f"{inv.prefix}-{b}") for b in inv.data.object_storage.buckets}
    assert {(r[0], r[1]) for r in rows} == expected
    located = [r for r in rows if r[0] in {"server", "volume", "primary ip", "load balancer",
                                           "bucket"}]  # fmt: skip
    assert located
    assert {(r[2], r[3], r[4]) for r in located} == {("hel1", "Helsinki", "FI")}
    assert len(rows) == len(residency_rows(inv))


@pytest.mark.claim("AI-1")
def test_ai_boundary_names_the_four_parts_sent_and_the_apps_provider() -> None:
    inv = load("production")
    markdown = render_markdown(inv)["ai-boundary"]
    sent = markdown.split("## Sent to Nebius B.V.", 1)[1].split("##", 1)[0]
    items = [ln[2:] for ln in sent.splitlines() if ln.startswith("- ")]
    assert items == inv.data.ai_boundary.sent
    assert len(items) == 4
    for part in ("message", "knowledge-base chunks of the same tenant",
                 "language, persona, phase", "current session"):  # fmt: skip
        assert sum(part in item for item in items) == 1
    app_host = urlsplit(NEBIUS_EU_BASE_URL).hostname
    assert f"`{app_host}:443`" in markdown
    provider = next(sp for sp in inv.data.subprocessors if sp.name == "Nebius B.V.")
    assert [ep.host for ep in provider.endpoints] == [app_host]


def test_html_escapes_what_the_data_says() -> None:
    page = to_html("# T\n\n| a |\n|---|\n| <script>alert(1)</script> |\n")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_cli_writes_markdown_and_html(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(REPO / ".venv/bin/cloop-ops"), "docs", "lab", "--out", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{d}.{s}" for d in ("subprocessors", "residency", "ai-boundary") for s in ("md", "html")
    )
