"""One visitor message in, one streamed answer out.

The visitor's message is stored before anything else happens, so a provider failure loses
nothing. Retrieval is local (pgvector + full-text, RES-6); the prompt builder makes the
only provider request (AI-1, AI-2); the tenant's daily cost cap is checked before the call
and metered after it (RATE-3).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.ai.prompt import ContextChunk, Instructions, Turn, build_chat_request
from app.ai.provider import ProviderError, Usage
from app.chat import repository
from app.chat.runtime import Runtime
from app.chat.schemas import ChatIn, Source
from app.core.db import Database
from app.core.logging import log_event
from app.core.problems import ApiError
from app.knowledge import repository as kb
from app.privacy.checks import Purpose, processing_allowed
from app.widget.service import Widget

log = logging.getLogger("cloop.chat")
NO_ANSWER = (
    "I could not find that in this site's information."
    " Leave your e-mail and we will get back to you."
)
CAPPED = (
    "The assistant has reached today's limit. Please leave your e-mail and we will answer you soon."
)
FAILED = "The assistant is unavailable right now. Your message was saved; please try again shortly."
RETRIEVE = 5
MAX_DISTANCE = 0.8


@dataclass(frozen=True)
class Conversation:
    """A stored visitor message, ready to be answered."""

    widget: Widget
    session_id: uuid.UUID
    visitor_id: str
    message: str
    history: tuple[Turn, ...]
    spent: int  # the tenant's provider cost today, in millionths of a euro


def sse(event: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def open_conversation(
    db: Database, runtime: Runtime, widget: Widget, body: ChatIn
) -> Conversation:
    """Store the visitor's message in its session (a new session if the given one is not
    this visitor's on this site) and load the session's recent turns: one pipelined round
    trip with the restriction check (a refusal rolls the message back)."""
    tenant_id = widget.tenant_id
    async with db.tenant(tenant_id) as conn, conn.pipeline():
        cur = await repository.send_store_question(
            conn, tenant_id, widget.site_id, session_id=body.session_id,
            visitor_id=body.visitor_id, content=body.message, turns=runtime.ai.history_turns,
        )  # fmt: skip
        if not await processing_allowed(conn, tenant_id, body.visitor_id, Purpose.AI_ANSWER):
            raise ApiError(403, "Processing of this visitor's data is restricted on this site.")
        stored = await repository.stored_question(cur)
    return Conversation(
        widget, stored.session_id, body.visitor_id, body.message, stored.history, stored.spent
    )


async def answer(db: Database, runtime: Runtime, conv: Conversation) -> AsyncIterator[str]:
    """The answer as server-sent events: session, sources, deltas, then done (or error)."""
    yield sse("session", {"session_id": str(conv.session_id)})
    try:
        chunks = await _retrieve(db, runtime, conv)
    except ProviderError as exc:
        log_event(log, "retrieval failed", logging.WARNING, error=str(exc))
        await _store_answer(db, conv, "", outcome="failed")
        yield sse("error", {"detail": FAILED})
        return
    sources = _sources(chunks)
    yield sse("sources", [s.model_dump() for s in sources])
    if not chunks:
        await _store_answer(db, conv, NO_ANSWER, answered=False)
        yield sse("delta", {"text": NO_ANSWER})
    elif conv.spent >= runtime.ai.daily_cost_cap_eur * 1_000_000:
        await _store_answer(db, conv, CAPPED, outcome="capped")
        yield sse("delta", {"text": CAPPED})
    else:
        async for event in _generate(db, runtime, conv, chunks, sources):
            yield event
            if event.startswith("event: error"):
                return
    yield sse("done", {"session_id": str(conv.session_id)})


async def _retrieve(db: Database, runtime: Runtime, conv: Conversation) -> list[dict[str, Any]]:
    widget = conv.widget
    vector = (await runtime.embedder.embed([conv.message], visitor_text=True))[0]
    async with db.tenant(widget.tenant_id) as conn:
        return await kb.search(
            conn, widget.tenant_id, widget.site_id, text=conv.message, vector=vector,
            model=runtime.embedder.model, config=kb.ts_config(widget.language),
            limit=RETRIEVE, max_distance=MAX_DISTANCE,
        )  # fmt: skip


def _sources(chunks: list[dict[str, Any]]) -> list[Source]:
    seen: dict[tuple[str, str], Source] = {}
    for chunk in chunks:
        url = chunk["url"] if str(chunk["url"]).startswith(("https://", "http://")) else ""
        seen.setdefault((chunk["title"], url), Source(title=chunk["title"], url=url))
    return list(seen.values())


async def _generate(
    db: Database,
    runtime: Runtime,
    conv: Conversation,
    chunks: list[dict[str, Any]],
    sources: list[Source],
) -> AsyncIterator[str]:
    widget = conv.widget
    request = build_chat_request(
        tenant_id=widget.tenant_id,
        message=conv.message,
        chunks=[ContextChunk(widget.tenant_id, c["title"], c["url"], c["content"]) for c in chunks],
        instructions=Instructions(
            widget.site_name,
            language=widget.language,
            persona=widget.persona or Instructions.persona,
            phase=widget.phase or Instructions.phase,
        ),
        history=conv.history,
        model=runtime.ai.chat_model,
        max_turns=runtime.ai.history_turns,
        max_tokens=runtime.ai.max_answer_tokens,
    )
    text, usage = "", None
    try:
        async for item in runtime.provider.stream(request):
            if isinstance(item, Usage):
                usage = item
            else:
                text += item
                yield sse("delta", {"text": item})
    except ProviderError as exc:
        log_event(log, "provider failed", logging.WARNING, error=str(exc))
        await _store_answer(db, conv, text, outcome="failed")
        yield sse("error", {"detail": FAILED})
        return
    await _store_answer(
        db, conv, text, answered=True, sources=sources, usage=usage, runtime=runtime
    )


async def _store_answer(
    db: Database,
    conv: Conversation,
    text: str,
    *,
    outcome: str = "ok",
    answered: bool | None = None,
    sources: list[Source] | None = None,
    usage: Usage | None = None,
    runtime: Runtime | None = None,
) -> None:
    tenant_id = conv.widget.tenant_id
    async with db.tenant(tenant_id) as conn:
        await repository.insert_message(
            conn, tenant_id, conv.session_id, visitor_id=conv.visitor_id, role="assistant",
            content=text, answered=answered, outcome=outcome,
            sources=[s.model_dump() for s in sources or []],
        )  # fmt: skip
        if usage is not None and runtime is not None and (usage.tokens_in or usage.tokens_out):
            cost = runtime.ai.cost_micro_eur(usage.model, usage.tokens_in, usage.tokens_out)
            await repository.add_usage(conn, tenant_id, usage.tokens_in, usage.tokens_out, cost)
