"""Stand-ins for what this machine cannot reach (Hetzner Cloud API, S3), on the real protocols."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.standins import bind_loopback, serve_in_thread


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on an ephemeral loopback port; yield its URL."""
    running = serve_in_thread(app, bind_loopback())
    try:
        yield running.url
    finally:
        running.stop()
