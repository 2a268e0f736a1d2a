"""The evidence report: claims x tests x last results, unproven claims flagged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.evidence.report import build, main, markdown
from tests.conftest import REPO

CLAIMS_TOML = """
[[claim]]
id = "A-1"
section = "S"
claim = "Proven by a passing test."
layers = ["app"]
proof = "p"

[[claim]]
id = "A-2"
section = "S"
claim = "One of its tests fails."
layers = ["host"]
proof = "p"

[[claim]]
id = "A-3"
section = "S"
claim = "Nothing proves this."
layers = ["docs"]
proof = "p"
"""

SAMPLE_TESTS = """
import pytest

@pytest.mark.claim("A-1")
def test_passes():
    assert 1 + 1 == 2

@pytest.mark.claim("A-1", "A-2")
def test_also_passes():
    assert "a".upper() == "A"

@pytest.mark.claim("A-2")
def test_fails():
    assert [] == [1]
"""


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    (tmp_path / "claims.toml").write_text(CLAIMS_TOML)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_sample.py").write_text(SAMPLE_TESTS)
    return tmp_path


def test_statuses_follow_the_last_results(sample: Path) -> None:
    collected = {"t::a": ["A-1"], "t::b": ["A-1", "A-2"], "t::c": ["A-2"]}
    results = {"t::a": {"outcome": "passed"}, "t::b": {"outcome": "passed"},
               "t::c": {"outcome": "failed"}}  # fmt: skip
    claims = build(sample / "claims.toml", collected, results)
    assert [(c.id, c.status) for c in claims] == [
        ("A-1", "proven"),
        ("A-2", "failing"),
        ("A-3", "UNPROVEN"),
    ]
    not_run = build(sample / "claims.toml", collected, {})
    assert not_run[0].status == "not run"
    text = markdown(claims)
    assert "| A-3 | **UNPROVEN** | docs | 0 |" in text
    assert "No test names this claim: **unproven**." in text


def test_plugin_records_results_and_report_reads_them(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = sample / "results.json"
    env = os.environ | {"CLOOP_EVIDENCE_RESULTS": str(results)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "infra.evidence.pytest_plugin",
         "-p", "no:cacheprovider", "-o", "markers=claim", str(sample / "suite")],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout  # one sample test fails on purpose
    outcomes = {k.split("::")[-1]: v["outcome"] for k, v in json.loads(results.read_text()).items()}
    assert outcomes == {
        "test_passes": "passed",
        "test_also_passes": "passed",
        "test_fails": "failed",
    }

    html = sample / "evidence.html"
    argv = ["--claims", str(sample / "claims.toml"), "--results", str(results), "--html",
            str(html), "--strict", str(sample / "suite")]  # fmt: skip
    assert main(argv=argv) == 1
    out = capsys.readouterr().out
    assert "3 claims: 1 proven, 1 failing, 1 unproven (no test)" in out
    assert "test_sample.py::test_fails`: failed" in out
    assert "<td><strong>UNPROVEN</strong></td>" in html.read_text()
