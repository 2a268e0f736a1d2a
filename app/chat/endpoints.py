"""HTTP of the chat: a visitor's message in, the answer out as server-sent events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from app.chat import service
from app.chat.runtime import KbRuntime
from app.chat.schemas import ChatIn
from app.core.deps import ClientIp, Db
from app.widget import service as widgets
from app.widget.cors import WidgetRoute

router = APIRouter(prefix="/api/v1/widget", tags=["chat"], route_class=WidgetRoute)


@router.post("/{token}/chat")
async def chat(
    token: str,
    body: ChatIn,
    *,
    db: Db,
    runtime: KbRuntime,
    ip: ClientIp,
    origin: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Checks (token, origin, visitor signature, quotas) happen before the stream starts,
    so refusals are plain problem responses; the answer then streams as SSE."""
    widget = await widgets.authorize(db, token, origin)
    widgets.check_visitor(widget, body.visitor_id, body.visitor_sig)
    await widgets.enforce_quotas(runtime, widget, ip)
    conversation = await service.open_conversation(db, runtime, widget, body)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        service.answer(db, runtime, conversation), media_type="text/event-stream", headers=headers
    )
