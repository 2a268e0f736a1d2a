"""The pyinfra deploy: `deploy.py` is the table of contents, `tasks/<concern>.py` the tasks."""

from __future__ import annotations

from typing import Any

from pyinfra.context import host

from infra.inventory import REPO

TEMPLATES = REPO / "templates"


def template(name: str) -> str:
    """The path of a template in the repository's `templates/` folder."""
    return str(TEMPLATES / name)


def host_data() -> dict[str, Any]:
    """The current host's data (inventory, group data, overrides) as a plain dict."""
    return dict(host.data.dict())  # type: ignore[no-untyped-call]
