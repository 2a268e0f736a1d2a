"""Helpers shared by the app tests: run a job's command line as its systemd timer would."""

from __future__ import annotations

import os
import subprocess
import sys

from app.core.settings import Settings
from tests.app.conftest import REPO_ROOT


def database_env(settings: Settings) -> dict[str, str]:
    """This environment, pointed at the test database (app and owner roles)."""
    return {
        **os.environ,
        "CLOOP_DATABASE_URL": settings.database_url,
        "CLOOP_OWNER_DATABASE_URL": settings.owner_database_url,
    }


def run_module(
    module: str, *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` from the repository root; the caller checks the outcome."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
