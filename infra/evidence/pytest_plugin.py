"""pytest plugin for the evidence report: remembers each test's last result, and on request
writes which claims each collected test proves.

Results are merged into `.cache/evidence/results.json` at the end of every run, so a partial
run (one directory, `-k`) updates only the tests it ran. Under xdist only the controller writes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(
    os.environ.get("CLOOP_EVIDENCE_RESULTS", REPO / ".cache" / "evidence" / "results.json")
)
_SEEN: dict[str, dict[str, Any]] = {}  # this run's results (one session per process)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--evidence-claims",
        metavar="PATH",
        help="write {test node id: [claim IDs]} of the collected tests to PATH (JSON)",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    target = session.config.getoption("--evidence-claims")
    if not target:
        return
    claims = {
        item.nodeid: [cid for marker in item.iter_markers("claim") for cid in marker.args]
        for item in session.items
    }
    Path(target).write_text(json.dumps(claims, indent=1, sort_keys=True))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the outcome that decides the test: a failed/skipped setup, else the call."""
    outcome: str
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = report.outcome
    elif report.when == "teardown" and report.failed:
        outcome = "error"
    else:
        return
    _SEEN[report.nodeid] = {
        "outcome": outcome,
        "duration_s": round(report.duration, 3),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput") or session.config.getoption("--collect-only"):
        return
    if not _SEEN:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(known | _SEEN, indent=1, sort_keys=True))
    tmp.replace(RESULTS)
