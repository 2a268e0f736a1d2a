"""What the knowledge, chat and widget endpoints share per app: embedder, AI provider,
object store, rate limiter, fetch policy and background ingestion tasks.

Built from the environment on first use; tests install their own (stand-in provider,
loopback fetch policy, moto object store) with `install_runtime`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.ai.embeddings import Embedder, MiniLMEmbedder, NebiusEmbedder
from app.ai.provider import ChatProvider, ExtractiveAnswerer, NebiusClient
from app.ai.settings import AISettings
from app.core.db import Database
from app.knowledge.crawler import CrawlLimits
from app.knowledge.ssrf import AddressPolicy
from app.knowledge.storage import ObjectStore, StorageSettings
from app.ratelimit.service import Limiter, Tier


class LimitSettings(BaseSettings):
    """Widget quotas (prefix ``CLOOP_LIMIT_``): per client IP, per embed token, per tenant."""

    model_config = SettingsConfigDict(env_prefix="CLOOP_LIMIT_", frozen=True)

    ip_per_second: int = 2
    ip_per_minute: int = 20
    ip_per_hour: int = 200
    token_per_minute: int = 300
    token_per_hour: int = 5000
    tenant_per_minute: int = 600
    tenant_per_day: int = 20000
    max_upload_mb: int = 10
    crawl_max_pages: int = 200
    crawl_max_depth: int = 3

    def ip_tiers(self) -> list[Tier]:
        return [
            Tier("second", 1, self.ip_per_second),
            Tier("minute", 60, self.ip_per_minute),
            Tier("hour", 3600, self.ip_per_hour),
        ]

    def token_tiers(self) -> list[Tier]:
        return [Tier("minute", 60, self.token_per_minute), Tier("hour", 3600, self.token_per_hour)]

    def tenant_tiers(self) -> list[Tier]:
        return [Tier("minute", 60, self.tenant_per_minute), Tier("day", 86400, self.tenant_per_day)]


@dataclass
class Runtime:
    """The per-app services of the knowledge base and chat."""

    ai: AISettings
    limits: LimitSettings
    embedder: Embedder
    provider: ChatProvider
    store: ObjectStore
    limiter: Limiter
    fetch_policy: AddressPolicy = field(default_factory=AddressPolicy)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def from_environment(cls, db: Database) -> Runtime:
        ai = AISettings()
        client = NebiusClient(ai) if "nebius" in (ai.provider, ai.embedder) else None
        provider: ChatProvider = ExtractiveAnswerer()
        if client and ai.provider == "nebius":
            provider = client
        embedder: Embedder = (
            NebiusEmbedder(client, ai.embedding_model)
            if client and ai.embedder == "nebius"
            else MiniLMEmbedder()
        )
        store = ObjectStore(StorageSettings())
        return cls(ai, LimitSettings(), embedder, provider, store, Limiter(db))

    @property
    def crawl_limits(self) -> CrawlLimits:
        return CrawlLimits(self.limits.crawl_max_pages, self.limits.crawl_max_depth)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ingestion in the background; the task is kept until it ends."""
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for every background task (tests; graceful shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def install_runtime(app: FastAPI, runtime: Runtime) -> None:
    app.state.kb_runtime = runtime


def get_runtime(request: Request) -> Runtime:
    state = request.app.state
    if getattr(state, "kb_runtime", None) is None:
        state.kb_runtime = Runtime.from_environment(state.db)
    runtime: Runtime = state.kb_runtime
    return runtime


KbRuntime = Annotated[Runtime, Depends(get_runtime)]
