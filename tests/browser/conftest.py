"""Fixtures of the browser tests: the API (real uvicorn, real Postgres) and a customer page
on another origin, a seeded knowledge base, the LLM stand-in, and Debian's Chromium driven
by Playwright with fingerprinting APIs and every request instrumented."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from app.ai.embeddings import MiniLMEmbedder
from app.core.db import Database
from app.core.main import create_app
from app.core.settings import Settings
from app.standins import base_url, bind_loopback
from app.standins.llm import LlmStandin
from app.widget.demo import SAMPLE_KB, DemoSite, demo_page, seed
from tests.app.conftest import anyio_backend, database_name, db, keys, postgres, settings

__all__ = ["anyio_backend", "database_name", "db", "keys", "postgres", "settings"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b>'
KB_XSS_TITLE = '<svg onload="window.__xss=3">Shipping</svg>'

# Logs fingerprinting API reads and CSP violations into window.__audit (see the file).
INSTRUMENT = (Path(__file__).parent / "instrument.js").read_text()


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve(app: Any, sock: socket.socket) -> Served:
    """uvicorn with its lifespan (the API opens its pools there) in a background thread."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "server thread died"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return Served(base_url(sock), server, thread)


@pytest.fixture
def llm() -> Iterator[LlmStandin]:
    standin = LlmStandin(reply=f"Here is the answer {XSS} [link](javascript:alert(1))")
    running = standin.start()
    yield standin
    running.stop()


@dataclass
class Stack:
    """The API, the customer's page on another origin, and what the page embeds."""

    api: str
    page: str
    site: DemoSite
    llm: LlmStandin
    db: Database
    requests: list[str] = field(default_factory=list)


@pytest.fixture
async def stack(
    settings: Settings, db: Database, llm: LlmStandin, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    monkeypatch.setenv("CLOOP_AI_PROVIDER", "nebius")
    monkeypatch.setenv("CLOOP_AI_BASE_URL", llm.base_url)
    monkeypatch.setenv("CLOOP_LIMIT_IP_PER_SECOND", "50")
    api_sock, page_sock = bind_loopback(), bind_loopback()
    api_origin, page_origin = base_url(api_sock), base_url(page_sock)
    documents = ((KB_XSS_TITLE, SAMPLE_KB[0][1]), *SAMPLE_KB[1:])
    site = await seed(db, MiniLMEmbedder(), origin=page_origin, documents=documents)
    api = serve(create_app(settings), api_sock)
    page = serve(demo_page(api_origin, site.token), page_sock)
    yield Stack(api_origin, page_origin, site, llm, db)
    page.stop()
    api.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context()
    await ctx.add_init_script(INSTRUMENT)
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext, stack: Stack) -> Page:
    opened = await context.new_page()
    opened.on("request", lambda request: stack.requests.append(request.url))
    await opened.goto(stack.page + "/")
    await opened.wait_for_selector("[data-cloop-widget] .launch")
    return opened
