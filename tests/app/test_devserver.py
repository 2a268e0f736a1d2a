"""`./scripts/app` as a newcomer runs it: the API with a ready session, and the widget demo
page on another origin, embedding the widget over the sample knowledge base, answering."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import REPO_ROOT

STARTUP_S = 180


@dataclass(frozen=True)
class Running:
    process: subprocess.Popen[str]
    api: str
    demo: str
    token: str
    data: Path


def _banner(process: subprocess.Popen[str]) -> str:
    """stderr up to the banner's last line (read in a thread so a hang cannot block)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while not seen or "Stop with Ctrl-C." not in seen[-1]:
        line = lines.get(timeout=STARTUP_S)
        if line is None:
            raise AssertionError("devserver exited before its banner:\n" + "".join(seen))
        seen.append(line)
    return "".join(seen)


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return match.group(1)


@pytest.fixture
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`python -m app.core.devserver` on ephemeral ports with its own data directory."""
    data = tmp_path_factory.mktemp("devserver") / "app"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOOP_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.core.devserver", "--port", "0", "--demo-port", "0",
         "--data", str(data)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = _banner(process)
        yield Running(
            process,
            api=_found(r"Cloop API:\s+(http://127\.0\.0\.1:\d+)", banner),
            demo=_found(r"Widget demo:\s+(http://127\.0\.0\.1:\d+)/", banner),
            token=_found(r"export TOKEN=(\S+)", banner),
            data=data,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _check_api(devserver: Running) -> None:
    me = httpx.get(
        f"{devserver.api}/api/v1/users/me", headers={"Authorization": f"Bearer {devserver.token}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "dev@example.com"


def _check_demo_page(devserver: Running) -> None:
    assert devserver.demo != devserver.api
    page = httpx.get(f"{devserver.demo}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src " + devserver.api in page.headers["content-security-policy"]
    script = re.search(r'<script src="([^"]+)" data-token="(cw_[^"]+)"', page.text)
    assert script, page.text
    assert script.group(1) == f"{devserver.api}/api/v1/widget/widget.js"
    widget = httpx.get(script.group(1))
    assert widget.status_code == 200
    assert "javascript" in widget.headers["content-type"]


def _check_demo_chat(devserver: Running) -> None:
    """What the widget on the demo page does: chat with its token from the page's origin."""
    token = _found(r'data-token="(cw_[^"]+)"', httpx.get(f"{devserver.demo}/").text)
    body = {"message": "How long does delivery to Sweden take?", "visitor_id": "devserver-test-1"}
    reply = httpx.post(
        f"{devserver.api}/api/v1/widget/{token}/chat",
        json=body,
        headers={"Origin": devserver.demo},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    events = {
        block.split("\n")[0].removeprefix("event: "): block.split("\n")[1][6:]
        for block in reply.text.strip().split("\n\n")
    }
    assert {"title": "Shipping and delivery", "url": ""} in json.loads(events["sources"])
    assert "Sweden" in reply.text
    assert "done" in events


def test_app_serves_api_session_and_widget_demo(devserver: Running) -> None:
    """One server start (seconds of Postgres and model loading) for every check; Ctrl-C
    then ends both servers and shuts its PostgreSQL down."""
    _check_api(devserver)
    _check_demo_page(devserver)
    _check_demo_chat(devserver)
    devserver.process.send_signal(signal.SIGINT)
    assert devserver.process.wait(timeout=60) == 0
    assert not (devserver.data / "pg" / "postmaster.pid").exists()
