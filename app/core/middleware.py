"""Response guarantees that hold for every route, whoever wrote it."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import log_event

log = logging.getLogger(__name__)


class NoCookiesMiddleware:
    """No response ever sets a cookie (AUTH-3): sessions live in the Authorization header,
    so there is no CSRF surface. A ``Set-Cookie`` from any code path is dropped and logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_without_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                kept = [(k, v) for k, v in headers if k.lower() != b"set-cookie"]
                if len(kept) != len(headers):
                    log_event(log, "set-cookie dropped", logging.ERROR, path=scope.get("path"))
                    message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, send_without_cookies)
