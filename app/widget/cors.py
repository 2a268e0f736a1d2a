"""CORS for the widget's API: browsers may read answers only from a token's allowed origins.

The checks themselves run in the endpoints (`service.authorize`), which refuse any other
origin before doing anything; this route class then labels every response, errors included,
so the widget can show a 429's `Retry-After` or a refusal's detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def _handler_for(request: Request, exc: Exception) -> Callable[..., Awaitable[Response]] | None:
    handlers: dict[Any, Any] = request.app.exception_handlers
    return next((handlers[k] for k in type(exc).__mro__ if k in handlers), None)


class WidgetRoute(APIRoute):
    """A route whose responses carry the CORS headers for the caller's origin."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except Exception as exc:
                to_response = _handler_for(request, exc)
                if to_response is None:
                    raise
                response = await to_response(request, exc)
            origin = request.headers.get("origin")
            if origin:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Expose-Headers"] = "Retry-After"
                response.headers["Vary"] = "Origin"
            return response

        return handler
