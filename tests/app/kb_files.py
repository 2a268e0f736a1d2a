"""Builders of real test documents (PDF, DOCX) and a small loopback website for KB tests."""

from __future__ import annotations

import asyncio
import io
from collections import Counter

import docx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, StreamingResponse

from app.standins import RunningServer, bind_loopback, serve_in_thread


def make_pdf(text: str) -> bytes:
    """A minimal valid one-page PDF whose text layer is `text`."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def make_docx(*paragraphs: str) -> bytes:
    """A Word document with these paragraphs."""
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


class LoopbackSite:
    """A website on loopback that counts hits per path; pages are set per test."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.hosts: list[str] = []
        self._sock = bind_loopback()
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = self._build()
        self._server: RunningServer | None = None

    def start(self) -> LoopbackSite:
        self._server = serve_in_thread(self.app, self._sock)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.stop()

    def _build(self) -> FastAPI:
        app = FastAPI(openapi_url=None)

        @app.get("/redirect")
        def redirect(to: str) -> Response:
            self.hits["/redirect"] += 1
            return RedirectResponse(to, status_code=302)

        @app.get("/big")
        def big(size: int) -> Response:
            self.hits["/big"] += 1
            return PlainTextResponse("x" * size)

        @app.get("/bigstream")
        def bigstream(size: int) -> Response:
            self.hits["/bigstream"] += 1
            return StreamingResponse(
                iter([b"y" * 65536] * (size // 65536)), media_type="text/plain"
            )

        @app.get("/slow")
        async def slow() -> Response:
            self.hits["/slow"] += 1
            await asyncio.sleep(3)
            return PlainTextResponse("late")

        @app.get("/{path:path}")
        def page(path: str, request: Request) -> Response:
            self.hits["/" + path] += 1
            self.hosts.append(request.headers.get("host", ""))
            if "/" + path not in self.pages:
                return HTMLResponse("not found", status_code=404)
            ctype, body = self.pages["/" + path]
            return Response(body, media_type=ctype)

        return app
