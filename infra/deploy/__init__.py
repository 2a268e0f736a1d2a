"""The pyinfra deploy: `deploy.py` is the table of contents, `tasks/<concern>.py` the tasks."""

from __future__ import annotations

from typing import Any

from jinja2 import FileSystemLoader
from pyinfra.context import host

from infra.inventory import REPO

TEMPLATES = REPO / "templates"


def template(name: str) -> str:
    """The path of a template in the repository's `templates/` folder."""
    return str(TEMPLATES / name)


def includes() -> dict[str, Any]:
    """`jinja_env_kwargs` letting a template include another from `templates/` (a fresh dict
    each time: pyinfra pops the loader)."""
    return {"loader": FileSystemLoader(TEMPLATES)}


def host_data() -> dict[str, Any]:
    """The current host's data (inventory, group data, overrides) as a plain dict."""
    return dict(host.data.dict())  # type: ignore[no-untyped-call]
