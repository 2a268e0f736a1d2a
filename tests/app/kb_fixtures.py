"""Fixtures of the knowledge/chat/widget tests: the LLM stand-in, a moto S3 on loopback,
the runtime wired to them, a site with an embed token, and helpers that upload, wait for
ingestion and chat over SSE. Import the fixtures by name into a test module."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.ai.embeddings import MiniLMEmbedder
from app.ai.provider import NebiusClient
from app.ai.settings import AISettings
from app.chat.runtime import LimitSettings, Runtime, install_runtime
from app.core.db import Database
from app.knowledge.ssrf import AddressPolicy
from app.knowledge.storage import ObjectStore, StorageSettings
from app.ratelimit.service import Limiter
from app.standins.llm import LlmStandin
from tests.app.conftest import AuthHeaders, TenantFixture
from tests.app.s3_fixtures import object_keys, s3_client, s3_settings

__all__ = ["object_keys", "s3_client", "s3_settings"]  # re-exported for the test modules

ORIGIN = "https://shop.example"
GENEROUS = LimitSettings(
    ip_per_second=1000, ip_per_minute=10000, ip_per_hour=100000, token_per_minute=10000,
    token_per_hour=100000, tenant_per_minute=10000, tenant_per_day=100000, max_upload_mb=1,
)  # fmt: skip
LOOPBACK_ONLY = AddressPolicy(extra_allowed=(ipaddress.ip_network("127.0.0.1/32"),))


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real offline model, loaded once per session."""
    return MiniLMEmbedder()


@pytest.fixture
def llm() -> Iterator[LlmStandin]:
    standin = LlmStandin()
    server = standin.start()
    yield standin
    server.stop()


@pytest.fixture
async def runtime(
    app: FastAPI,
    db: Database,
    llm: LlmStandin,
    s3_settings: StorageSettings,
    embedder: MiniLMEmbedder,
) -> AsyncIterator[Runtime]:
    """Nebius client pointed at the stand-in, the real MiniLM, moto S3, generous quotas."""
    ai = AISettings(provider="nebius", base_url=llm.base_url, retries=1, timeout_s=10)
    client = NebiusClient(ai)
    built = Runtime(
        ai=ai, limits=GENEROUS, embedder=embedder, provider=client,
        store=ObjectStore(s3_settings), limiter=Limiter(db), fetch_policy=LOOPBACK_ONLY,
    )  # fmt: skip
    install_runtime(app, built)
    yield built
    await built.drain()
    await client.aclose()


@dataclass(frozen=True)
class WidgetSite:
    """A site of a tenant with a live embed token and admin headers."""

    tenant: TenantFixture
    site_id: str
    token: str
    token_id: str
    admin: dict[str, str]

    @property
    def base(self) -> str:
        return f"/api/v1/sites/{self.site_id}"


async def make_widget_site(
    client: httpx.AsyncClient,
    tenant: TenantFixture,
    auth_headers: AuthHeaders,
    *,
    signed: bool = False,
    **settings: Any,
) -> WidgetSite:
    admin = auth_headers(tenant.admin, tenant)
    body = {"name": "Shop", "allowed_origins": [ORIGIN], "language": "en"} | settings
    site = await client.post("/api/v1/sites", json=body, headers=admin)
    assert site.status_code == 201, site.text
    site_id = site.json()["id"]
    issued = await client.post(
        f"/api/v1/sites/{site_id}/widget-tokens",
        json={"require_signed_visitor": signed},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    return WidgetSite(tenant, site_id, issued.json()["token"], issued.json()["id"], admin)


@pytest.fixture
async def widget_site(
    client: httpx.AsyncClient, tenant: TenantFixture, auth_headers: AuthHeaders
) -> WidgetSite:
    return await make_widget_site(client, tenant, auth_headers)


async def wait_for_job(client: httpx.AsyncClient, site: WidgetSite, job_id: str) -> dict[str, Any]:
    for _ in range(400):
        job = (await client.get(f"{site.base}/knowledge/jobs/{job_id}", headers=site.admin)).json()
        if job["status"] in ("done", "failed"):
            return dict(job)
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


async def upload(
    client: httpx.AsyncClient, site: WidgetSite, name: str, data: bytes
) -> httpx.Response:
    return await client.post(
        f"{site.base}/knowledge/uploads", files={"file": (name, data)}, headers=site.admin
    )


async def ingest(client: httpx.AsyncClient, site: WidgetSite, name: str, text: str) -> None:
    """Upload a text file and wait until it is embedded."""
    response = await upload(client, site, name, text.encode())
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, site, response.json()["job"]["id"])
    assert job["status"] == "done", job


@dataclass
class Reply:
    """A chat answer as the widget receives it."""

    status: int
    headers: httpx.Headers
    events: list[tuple[str, Any]]
    problem: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(data["text"] for event, data in self.events if event == "delta")

    def data(self, name: str) -> Any:
        return next(data for event, data in self.events if event == name)


async def chat(
    client: httpx.AsyncClient,
    token: str,
    message: str,
    *,
    visitor: str = "visitor-0001",
    session_id: str | None = None,
    origin: str = ORIGIN,
    **extra: Any,
) -> Reply:
    body = {"message": message, "visitor_id": visitor} | extra
    if session_id:
        body["session_id"] = session_id
    response = await client.post(
        f"/api/v1/widget/{token}/chat", json=body, headers={"Origin": origin}
    )
    if response.status_code != 200:
        return Reply(response.status_code, response.headers, [], response.json())
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return Reply(response.status_code, response.headers, events)
