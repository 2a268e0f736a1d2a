"""OpenAI-compatible LLM stand-in, shaped like Nebius' `/v1/chat/completions` (streaming SSE
and plain JSON) and `/v1/embeddings`.

It records every request it receives (path, headers, JSON body) so that tests can inspect
exactly what would have left for the provider (AI-1, AI-2, AI-3). Tests can set the reply
text and queue HTTP failures for the next calls.

Run: `python -m app.standins.llm [--port N] [--reply TEXT]` (prints its base URL as JSON).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from app.standins import RunningServer, base_url, bind_loopback, serve_forever, serve_in_thread

DEFAULT_REPLY = "This is the stand-in's answer, grounded in source [1]."


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def raw(self) -> str:
        """The whole request as one string, for "must never contain" searches."""
        return json.dumps({"path": self.path, "headers": self.headers, "body": self.body})


class LlmStandin:
    """The stand-in's state (recorded requests, reply, queued faults) and its ASGI app."""

    def __init__(self, reply: str = DEFAULT_REPLY, port: int = 0) -> None:
        self.reply = reply
        self.requests: list[Recorded] = []
        self._faults: deque[int] = deque()
        self._lock = threading.Lock()
        self._sock = bind_loopback(port)
        self.url = base_url(self._sock)
        self.app = self._build_app()

    @property
    def base_url(self) -> str:
        """What `CLOOP_AI_BASE_URL` is set to in tests."""
        return f"{self.url}/v1/"

    def fail_next(self, *statuses: int) -> None:
        """The next calls answer these HTTP statuses, one each, in order."""
        self._faults.extend(statuses)

    def start(self) -> RunningServer:
        """Serve on the loopback port bound at construction."""
        return serve_in_thread(self.app, self._sock)

    async def _record(self, request: Request) -> tuple[dict[str, Any], int | None]:
        body = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(Recorded(request.method, request.url.path, headers, body))
            fault = self._faults.popleft() if self._faults else None
        return body, fault

    async def _chat(self, request: Request) -> Response:
        body, fault = await self._record(request)
        if fault is not None:
            return JSONResponse({"error": {"message": "injected fault"}}, status_code=fault)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        words = self.reply.split(" ")
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        created = int(time.time())
        if not body.get("stream"):
            message = {"role": "assistant", "content": self.reply}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return JSONResponse(
                {"id": "chatcmpl-standin", "object": "chat.completion", "created": created,
                 "model": body["model"], "choices": [choice], "usage": usage}
            )  # fmt: skip
        return StreamingResponse(
            _chunks(words, body["model"], created, usage), media_type="text/event-stream"
        )

    async def _embeddings(self, request: Request) -> Response:
        body, fault = await self._record(request)
        if fault is not None:
            return JSONResponse({"error": {"message": "injected fault"}}, status_code=fault)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = int(body.get("dimensions") or 4096)
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(text, dims)}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(str(t).split()) for t in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        result = {"object": "list", "data": data, "model": body["model"], "usage": usage}
        return JSONResponse(result)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="LLM stand-in", openapi_url=None)
        app.add_api_route("/v1/chat/completions", self._chat, methods=["POST"])
        app.add_api_route("/v1/embeddings", self._embeddings, methods=["POST"])
        return app


async def _chunks(
    words: list[str], model: str, created: int, usage: dict[str, int]
) -> AsyncIterator[bytes]:
    """The reply as OpenAI-style SSE chunks, one word each, then usage and [DONE]."""
    base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": created}
    for n, word in enumerate(words):
        text = word if n == 0 else " " + word
        choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        yield f"data: {json.dumps(base | {'model': model, 'choices': [choice]})}\n\n".encode()
    final = base | {"model": model, "choices": [], "usage": usage}
    yield f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode()


def _vector(text: str, dims: int) -> list[float]:
    """A deterministic pseudo-embedding: the same text always gives the same unit vector."""
    seed = int.from_bytes(hashlib.sha256(str(text).encode()).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dims)
    return [float(x) for x in vector / np.linalg.norm(vector)]


def main() -> None:
    """Run the stand-in in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    args = parser.parse_args()
    standin = LlmStandin(args.reply, args.port)
    print(json.dumps({"url": standin.url, "base_url": standin.base_url}), flush=True)
    serve_forever(standin.app, standin._sock)


if __name__ == "__main__":
    main()
