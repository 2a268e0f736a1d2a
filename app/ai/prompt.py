"""The prompt builder: the ONE place that builds requests for the AI provider (AI-1).

A request holds only the visitor's current message, chunks of the same tenant's
knowledge base, the site's instructions (language, persona, phase) and the current
session's recent turns; visitor text is redacted first (AI-2). Only the
chat-completions and embeddings endpoints exist here (AI-3). Provider clients accept
nothing but a `ProviderRequest`, and only this module makes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.ai.redact import redact
from app.core.tenancy import TenantId

Endpoint = Literal["chat/completions", "embeddings"]


@dataclass(frozen=True)
class Instructions:
    """A site's settings that shape answers."""

    site_name: str
    language: str = "en"
    persona: str = "a friendly, concise assistant"
    phase: str = "general"


@dataclass(frozen=True)
class Turn:
    """One earlier message of the current session."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class ContextChunk:
    """A retrieved knowledge-base chunk, tagged with the tenant it belongs to."""

    tenant_id: TenantId
    title: str
    url: str
    content: str


@dataclass(frozen=True)
class ProviderRequest:
    """What goes to the provider: an endpoint path and a JSON body. `context` stays here
    (the offline answerer reads it); it is never sent."""

    endpoint: Endpoint
    body: dict[str, Any]
    context: tuple[str, ...] = ()


class CrossTenantContextError(ValueError):
    """A chunk of another tenant reached the prompt builder: refuse to build."""


def _system_prompt(instructions: Instructions, chunks: Sequence[ContextChunk]) -> str:
    sources = "\n\n".join(
        f"[{n}] {chunk.title}\n{chunk.content}" for n, chunk in enumerate(chunks, 1)
    )
    return (
        f"You are {instructions.persona} on the website of {instructions.site_name}. "
        f"Answer in the language with code {instructions.language!r}. "
        f"Conversation phase: {instructions.phase}. "
        "Answer only from the numbered sources below and cite them like [1]. "
        "If they do not hold the answer, say you do not know and offer to take a message.\n\n"
        f"Sources:\n{sources or '(none)'}"
    )


def build_chat_request(
    *,
    tenant_id: TenantId,
    message: str,
    chunks: Sequence[ContextChunk],
    instructions: Instructions,
    history: Sequence[Turn],
    model: str,
    max_turns: int,
    max_tokens: int,
) -> ProviderRequest:
    """A streaming chat-completions request for the current message."""
    foreign = [c for c in chunks if c.tenant_id != tenant_id]
    if foreign:
        raise CrossTenantContextError(f"{len(foreign)} chunk(s) of another tenant")
    recent = list(history)[-max_turns:] if max_turns > 0 else []
    messages = [{"role": "system", "content": _system_prompt(instructions, chunks)}]
    messages += [{"role": t.role, "content": redact(t.content)} for t in recent]
    messages.append({"role": "user", "content": redact(message)})
    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0.2,
    }
    return ProviderRequest("chat/completions", body, tuple(c.content for c in chunks))


def build_embedding_request(
    texts: Sequence[str], *, model: str, dimensions: int, visitor_text: bool
) -> ProviderRequest:
    """An embeddings request; visitor text (a question) is redacted, KB text is not."""
    inputs = [redact(t) for t in texts] if visitor_text else list(texts)
    body = {"model": model, "input": inputs, "dimensions": dimensions, "encoding_format": "float"}
    return ProviderRequest("embeddings", body)
