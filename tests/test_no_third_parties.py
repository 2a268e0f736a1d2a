"""SUB-2: no analytics, error-tracking, chat, mailing or CDN vendor is bundled or referenced."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import REPO

# Vendors the security page says we do not use, as they appear in package names and URLs.
FORBIDDEN = re.compile(
    r"sentry|google[-_.]?analytics|googletagmanager|gtag|cloudflare|intercom|mailchimp"
    r"|segment[-_.]?(io|analytics)|mixpanel|hotjar|datadog|newrelic|fingerprintjs|amplitude"
    r"|jsdelivr|unpkg|cdnjs",
    re.IGNORECASE,
)
SHIPPED_SOURCES = ("app", "templates", "infra", "inventories")
SHIPPED_SUFFIXES = {".py", ".js", ".html", ".j2", ".css", ".sql", ".conf"}


def shipped_files() -> list[Path]:
    return [
        path
        for top in SHIPPED_SOURCES
        for path in (REPO / top).rglob("*")
        if path.suffix in SHIPPED_SUFFIXES and "__pycache__" not in path.parts
    ]


@pytest.mark.claim("SUB-2")
def test_no_installed_distribution_is_a_forbidden_vendor_sdk() -> None:
    names = {dist.metadata["Name"] for dist in metadata.distributions()}
    assert len(names) > 50, "the scan must see the whole environment"
    assert sorted(name for name in names if FORBIDDEN.search(name)) == []


@pytest.mark.claim("SUB-2")
def test_no_shipped_file_references_a_forbidden_vendor() -> None:
    files = shipped_files()
    assert len(files) > 20, "the scan must see the shipped sources"
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()[:80]}"
        for path in files
        if not path.name.startswith("test_")
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if FORBIDDEN.search(line) and "FORBIDDEN" not in line
    ]
    assert hits == []


def test_the_scan_recognises_a_vendor() -> None:
    """Guards the pattern itself: a scan that matches nothing would prove nothing."""
    samples = ("sentry-sdk", "https://www.googletagmanager.com/gtag/js", "cdnjs.cloudflare.com")
    for sample in samples:
        assert FORBIDDEN.search(sample)
