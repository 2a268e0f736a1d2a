"""Suite-wide rules: every claim a test names must exist in claims.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["infra.evidence.pytest_plugin"]  # last results for ./scripts/evidence
CLAIM_IDS = frozenset(c["id"] for c in tomllib.loads((REPO / "claims.toml").read_text())["claim"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A typo in a claim ID would silently prove nothing: refuse to run instead."""
    unknown = {
        (item.nodeid, claim_id)
        for item in items
        for marker in item.iter_markers("claim")
        for claim_id in marker.args
        if claim_id not in CLAIM_IDS
    }
    if unknown:
        listing = "\n".join(f"  {node}: {cid}" for node, cid in sorted(unknown))
        raise pytest.UsageError(f"tests name claims that claims.toml does not know:\n{listing}")
