"""Clients that carry a `ProviderRequest` to an answer: Nebius over httpx (streaming SSE,
timeouts, retries before the first token) and the offline extractive answerer."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx

from app.ai.prompt import ProviderRequest
from app.ai.settings import AISettings, check_provider_url

_RETRYABLE = frozenset({429, 500, 502, 503, 504})
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from"}
    | {"how", "i", "in", "is", "it", "me", "my", "of", "on", "or", "our", "the", "this"}
    | {"to", "we", "what", "when", "where", "which", "who", "why", "with", "you", "your"}
)


class ProviderError(RuntimeError):
    """The provider failed; the visitor gets a clear message and nothing is lost."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Usage:
    """Metered tokens of one call (the cost cap adds these up)."""

    model: str
    tokens_in: int
    tokens_out: int


class ChatProvider(Protocol):
    """Streams answer text; the last item is the call's `Usage`."""

    def stream(self, request: ProviderRequest) -> AsyncIterator[str | Usage]: ...


def _auth_headers(settings: AISettings) -> dict[str, str]:
    key = settings.api_key.get_secret_value()
    return {"Authorization": f"Bearer {key}"} if key else {}


class NebiusClient:
    """The only HTTP client of the AI provider; its base URL is checked to be EU Nebius."""

    def __init__(self, settings: AISettings, transport: httpx.AsyncBaseTransport | None = None):
        self._settings = settings
        self._http = httpx.AsyncClient(
            base_url=check_provider_url(settings.base_url),
            headers=_auth_headers(settings),
            timeout=httpx.Timeout(settings.timeout_s, connect=5.0),
            transport=transport,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, request: ProviderRequest) -> dict[str, Any]:
        """A non-streaming call (embeddings), retried on transient failures."""
        for attempt in range(self._settings.retries + 1):
            try:
                response = await self._http.post(request.endpoint, json=request.body)
            except httpx.TransportError as exc:
                if attempt == self._settings.retries:
                    raise ProviderError(f"provider unreachable: {type(exc).__name__}") from exc
            else:
                if response.status_code == 200:
                    result: dict[str, Any] = response.json()
                    return result
                if response.status_code not in _RETRYABLE or attempt == self._settings.retries:
                    raise ProviderError(f"provider answered HTTP {response.status_code}")
            await anyio.sleep(0.2 * 2**attempt)
        raise ProviderError("provider retries exhausted")

    async def stream(self, request: ProviderRequest) -> AsyncIterator[str | Usage]:
        """Stream a chat completion; retries only while no token has reached the visitor."""
        model = str(request.body.get("model", ""))
        for attempt in range(self._settings.retries + 1):
            started = False
            try:
                async with self._http.stream("POST", request.endpoint, json=request.body) as resp:
                    if resp.status_code != 200:
                        await resp.aread()
                        raise ProviderError(
                            f"provider answered HTTP {resp.status_code}", resp.status_code
                        )
                    async for item in _sse_items(resp, model):
                        started = True
                        yield item
                    return
            except (httpx.TransportError, ProviderError) as exc:
                status = exc.status if isinstance(exc, ProviderError) else None
                transient = status is None or status in _RETRYABLE
                if started or not transient or attempt == self._settings.retries:
                    raise ProviderError(str(exc) or type(exc).__name__, status) from exc
            await anyio.sleep(0.2 * 2**attempt)


async def _sse_items(response: httpx.Response, model: str) -> AsyncIterator[str | Usage]:
    """Text deltas and the final usage out of an OpenAI-style SSE stream."""
    usage = Usage(model, 0, 0)
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        event = json.loads(data)
        for choice in event.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield text
        if event.get("usage"):
            u = event["usage"]
            usage = Usage(model, int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
    yield usage


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


class ExtractiveAnswerer:
    """Offline answers: the source sentences sharing most words with the question."""

    async def stream(self, request: ProviderRequest) -> AsyncIterator[str | Usage]:
        question = _words(str(request.body["messages"][-1]["content"]))
        scored = [
            (len(question & _words(sentence)), -n, sentence)
            for n, sentence in enumerate(
                s for chunk in request.context for s in _SENTENCE.split(chunk) if s.strip()
            )
        ]
        best = sorted((s for s in scored if s[0] > 0), reverse=True)[:2]
        if not best:
            yield "I do not know that from this site's information. You can leave your e-mail."
        for _, _, sentence in sorted(best, key=lambda s: -s[1]):
            for word in sentence.split(" "):
                yield word + " "
                await anyio.sleep(0)
        yield Usage("offline-extractive", 0, 0)
