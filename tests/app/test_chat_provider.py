"""The provider client: EU-only base URL (RES-5), only the chat-completions and embeddings
endpoints (AI-3), streaming with retries before the first token, clear failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from app.ai.embeddings import DIMENSIONS, MiniLMEmbedder, NebiusEmbedder
from app.ai.prompt import ContextChunk, Instructions, build_chat_request
from app.ai.provider import ExtractiveAnswerer, NebiusClient, ProviderError, Usage
from app.ai.settings import NEBIUS_EU_BASE_URL, AISettings
from app.core.tenancy import TenantId
from app.standins.llm import LlmStandin

TENANT = TenantId(uuid.uuid4())


@pytest.fixture
def llm() -> Iterator[LlmStandin]:
    standin = LlmStandin(reply="Opening hours are 9 to 17 [1].")
    server = standin.start()
    yield standin
    server.stop()


def settings_for(llm: LlmStandin, **extra: object) -> AISettings:
    return AISettings(provider="nebius", base_url=llm.base_url, retries=2, **extra)  # type: ignore[arg-type]


def request(message: str = "When are you open?") -> object:
    chunk = ContextChunk(TENANT, "Hours", "https://shop.example/hours", "We are open 9 to 17.")
    return build_chat_request(
        tenant_id=TENANT,
        message=message,
        chunks=[chunk],
        instructions=Instructions("Shop"),
        history=[],
        model="meta-llama/Llama-3.3-70B-Instruct",
        max_turns=6,
        max_tokens=100,
    )


async def collect(client: NebiusClient | ExtractiveAnswerer, req: object) -> tuple[str, Usage]:
    text, usage = "", None
    async for item in client.stream(req):  # type: ignore[arg-type]
        if isinstance(item, Usage):
            usage = item
        else:
            text += item
    assert usage is not None
    return text, usage


@pytest.mark.claim("RES-5")
@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1/",
        "https://api.studio.nebius.ai/v1/",
        "http://api.tokenfactory.nebius.com/v1/",
        "https://api.tokenfactory.nebius.com.evil.example/v1/",
        "https://10.0.0.5/v1/",
    ],
)
def test_only_the_eu_nebius_endpoint_is_accepted(url: str) -> None:
    with pytest.raises(ValidationError, match=r"only https://api\.tokenfactory\.nebius\.com/v1/"):
        AISettings(base_url=url)
    assert AISettings().base_url == NEBIUS_EU_BASE_URL


@pytest.mark.anyio
@pytest.mark.claim("AI-3")
async def test_streams_the_answer_and_meters_usage(llm: LlmStandin) -> None:
    client = NebiusClient(settings_for(llm))
    text, usage = await collect(client, request())
    await client.aclose()
    assert text == "Opening hours are 9 to 17 [1]."
    assert usage.tokens_out == 7
    assert usage.tokens_in > 0
    assert [r.path for r in llm.requests] == ["/v1/chat/completions"]
    assert llm.requests[0].body["stream"] is True


@pytest.mark.anyio
async def test_transient_failures_are_retried_before_the_first_token(llm: LlmStandin) -> None:
    llm.fail_next(503, 502)
    client = NebiusClient(settings_for(llm))
    text, _ = await collect(client, request())
    await client.aclose()
    assert text.startswith("Opening hours")
    assert len(llm.requests) == 3


@pytest.mark.anyio
async def test_persistent_failure_is_a_clear_provider_error(llm: LlmStandin) -> None:
    llm.fail_next(500, 500, 500)
    client = NebiusClient(settings_for(llm))
    with pytest.raises(ProviderError, match="HTTP 500"):
        await collect(client, request())
    await client.aclose()


@pytest.mark.anyio
async def test_client_errors_are_not_retried(llm: LlmStandin) -> None:
    llm.fail_next(401)
    client = NebiusClient(settings_for(llm))
    with pytest.raises(ProviderError, match="HTTP 401"):
        await collect(client, request())
    await client.aclose()
    assert len(llm.requests) == 1


@pytest.mark.anyio
async def test_unreachable_provider_is_a_clear_provider_error() -> None:
    llm = LlmStandin()  # bound, never started: connections are refused
    client = NebiusClient(AISettings(base_url=llm.base_url, retries=1, timeout_s=2))
    with pytest.raises(ProviderError):
        await collect(client, request())
    await client.aclose()


@pytest.mark.anyio
@pytest.mark.claim("AI-2", "AI-3")
async def test_embeddings_go_to_the_embeddings_endpoint_with_visitor_text_redacted(
    llm: LlmStandin,
) -> None:
    client = NebiusClient(settings_for(llm))
    embedder = NebiusEmbedder(client, "Qwen/Qwen3-Embedding-8B")
    vectors = await embedder.embed(["mail me at eve@example.org"], visitor_text=True)
    await client.aclose()
    assert vectors.shape == (1, DIMENSIONS)
    assert [r.path for r in llm.requests] == ["/v1/embeddings"]
    assert "eve@example.org" not in llm.requests[0].raw
    assert llm.requests[0].body["dimensions"] == DIMENSIONS


@pytest.mark.anyio
async def test_offline_answerer_quotes_the_best_source_sentence() -> None:
    text, usage = await collect(ExtractiveAnswerer(), request("What are the opening hours, open?"))
    assert "open 9 to 17" in text
    assert usage.tokens_in == usage.tokens_out == 0


@pytest.mark.anyio
async def test_minilm_embeds_locally_to_unit_vectors() -> None:
    vectors = await MiniLMEmbedder().embed(
        ["How much is the Pro plan?", "The Pro plan costs 49 euros a month.", "Helsinki office"]
    )
    assert vectors.shape == (3, DIMENSIONS)
    assert abs(float((vectors[0] ** 2).sum()) - 1) < 1e-4
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.3
