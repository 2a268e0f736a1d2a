"""Compliance documents generated from an inventory (claims SUB-1, RES-1, RES-3, AI-1).

The subprocessor list, the residency table and the AI data boundary are rendered from the
same data that provisioning and the hosts' egress allow-list use, so a reviewer reads what is
deployed. Markdown from `templates/docs/*.md.j2`; the HTML is that Markdown rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup

from infra.inventory import REPO, Endpoint, Inventory, egress_allowlist, subprocessor_of
from infra.provision.desired import desired_resources
from infra.provision.guard import LOCATIONS

TEMPLATES = REPO / "templates" / "docs"
DOCUMENTS = ("subprocessors", "residency", "ai-boundary")


@dataclass(frozen=True)
class ResidencyRow:
    kind: str
    name: str
    location: str
    city: str
    country: str


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _environment() -> Environment:
    env = Environment(  # noqa: S701 (Markdown output; the HTML is escaped by markdown-it)
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    return env


def residency_rows(inventory: Inventory) -> list[ResidencyRow]:
    """Every resource provisioning creates (and the buckets), with where it lives."""
    rows = []
    for d in desired_resources(inventory):
        kind = d.kind.replace("_", " ")
        if d.location is not None:
            place = LOCATIONS[d.location]
            rows.append(ResidencyRow(kind, d.name, d.location, place.city, place.country))
        elif "network_zone" in d.spec:
            rows.append(ResidencyRow(kind, d.name, f"{d.spec['network_zone']} (zone)", "-", "-"))
        else:
            rows.append(ResidencyRow(kind, d.name, "project-wide", "-", "-"))
    storage = inventory.data.object_storage
    place = LOCATIONS[storage.region]
    for key in storage.buckets:
        name = f"{inventory.prefix}-{key}"
        rows.append(ResidencyRow("bucket", name, storage.region, place.city, place.country))
    return rows


def _other_endpoints(inventory: Inventory) -> list[Endpoint]:
    """Allow-listed endpoints no subprocessor runs (the lab's package mirror)."""
    everything = egress_allowlist(inventory, frozenset({"edge", "app", "db"}))
    return [ep for ep in everything if subprocessor_of(inventory, ep.host) is None]


def context(inventory: Inventory) -> dict[str, Any]:
    data = inventory.data
    provider = next(sp for sp in data.subprocessors if sp.name == data.ai_boundary.provider)
    return {
        "inventory": inventory.name,
        "subprocessors": data.subprocessors,
        "others": _other_endpoints(inventory),
        "residency": residency_rows(inventory),
        "ai": data.ai_boundary,
        "provider": provider,
    }


def render_markdown(inventory: Inventory) -> dict[str, str]:
    """Document name -> Markdown."""
    env, ctx = _environment(), context(inventory)
    return {name: env.get_template(f"{name}.md.j2").render(ctx) for name in DOCUMENTS}


def to_html(markdown: str) -> str:
    """A standalone page (no external resources); raw HTML in the source is escaped."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    title = markdown.splitlines()[0].lstrip("# ")
    page = _environment().get_template("page.html.j2")
    return page.render(title=title, body=Markup(body))  # noqa: S704 (markdown-it escaped it)


def write_documents(inventory: Inventory, target: Path) -> list[Path]:
    """Write `<name>.md` and `<name>.html` for each document; return the paths."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, markdown in render_markdown(inventory).items():
        for suffix, text in ((".md", markdown), (".html", to_html(markdown))):
            path = target / f"{name}{suffix}"
            path.write_text(text)
            written.append(path)
    return written
