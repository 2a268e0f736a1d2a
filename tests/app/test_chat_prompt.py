"""The prompt builder sends only what AI-1 lists and redacts identifiers (AI-2)."""

from __future__ import annotations

import json
import uuid

import pytest

from app.ai.prompt import (
    ContextChunk,
    CrossTenantContextError,
    Instructions,
    Turn,
    build_chat_request,
)
from app.ai.redact import redact
from app.core.tenancy import TenantId

TENANT = TenantId(uuid.uuid4())
OTHER = TenantId(uuid.uuid4())
PLANTED = [
    "anna.virtanen@example.fi",
    "+358 40 123 4567",
    "040-765 4321",
    "FI21 1234 5600 0007 85",
    "131052-308T",
    "sk-live-abcdefghijklmnop123456",
    "hunter2",
    "123e4567-e89b-12d3-a456-426614174000",
    "203.0.113.7",
]


def build(message: str, history: list[Turn], chunks: list[ContextChunk]) -> dict[str, object]:
    request = build_chat_request(
        tenant_id=TENANT,
        message=message,
        chunks=chunks,
        instructions=Instructions("Acme Oy", language="fi", persona="Acme's helper", phase="sales"),
        history=history,
        model="m",
        max_turns=4,
        max_tokens=100,
    )
    assert request.endpoint == "chat/completions"
    return request.body


@pytest.mark.claim("AI-1")
def test_request_holds_only_instructions_chunks_recent_turns_and_the_message() -> None:
    history = [Turn("user" if n % 2 == 0 else "assistant", f"turn {n}") for n in range(10)]
    chunk = ContextChunk(TENANT, "Pricing", "https://acme.example/p", "Pro costs 49 EUR.")
    body = build("How much is Pro?", history, [chunk])
    assert set(body) == {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "temperature",
    }
    messages = body["messages"]
    assert isinstance(messages, list)
    system, *turns, current = messages
    assert system["role"] == "system"
    for part in ("'fi'", "Acme's helper", "sales", "Pro costs 49 EUR."):
        assert part in system["content"]
    assert [t["content"] for t in turns] == ["turn 6", "turn 7", "turn 8", "turn 9"]
    assert current == {"role": "user", "content": "How much is Pro?"}


@pytest.mark.claim("AI-1", "AI-2")
def test_chunks_of_another_tenant_are_refused() -> None:
    mine = ContextChunk(TENANT, "Mine", "", "ours")
    theirs = ContextChunk(OTHER, "Theirs", "", "secret of another tenant")
    with pytest.raises(CrossTenantContextError):
        build("hi", [], [mine, theirs])


@pytest.mark.claim("AI-2")
def test_identifiers_in_the_message_and_earlier_turns_are_redacted() -> None:
    text = "Me: " + ", ".join(f"{p}" for p in PLANTED[:6]) + ", password: hunter2, id "
    text += PLANTED[7] + " from " + PLANTED[8]
    body = build(text, [Turn("user", "earlier I said anna.virtanen@example.fi")], [])
    raw = json.dumps(body)
    for planted in PLANTED:
        assert planted not in raw, planted
    assert "[email]" in raw
    assert "[phone]" in raw


@pytest.mark.parametrize(
    "kept",
    ["What does the Pro plan cost in 2026?", "Do you ship 3 items to Espoo?", "Order 12345 status"],
)
def test_ordinary_questions_survive_redaction(kept: str) -> None:
    assert redact(kept) == kept
