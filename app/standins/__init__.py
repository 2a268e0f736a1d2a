"""Stand-ins for services this machine cannot reach, served as real HTTP on loopback.

Each stand-in is an ASGI app run by uvicorn on a socket bound to an ephemeral port, so helpers
and tests running in parallel never collide and the production client code talks to them
unchanged.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class RunningServer:
    """A uvicorn server running in a background thread; `stop()` ends it."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread, so no socket is left open."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def bind_loopback(port: int = 0) -> socket.socket:
    """Bind 127.0.0.1 (port 0: the kernel picks a free one) before the app needs its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def base_url(sock: socket.socket) -> str:
    """The http URL of a bound loopback socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def serve_in_thread(app: Any, sock: socket.socket) -> RunningServer:
    """Serve `app` on the already bound `sock` in a daemon thread; returns once it accepts."""
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"stand-in on {base_url(sock)} did not start")
        time.sleep(0.01)
    return RunningServer(url=base_url(sock), server=server, thread=thread)


def serve_forever(app: Any, sock: socket.socket) -> None:
    """Serve `app` in the foreground until interrupted (the `python -m` entry points)."""
    uvicorn.Server(uvicorn.Config(app, log_level="info", lifespan="off")).run(sockets=[sock])
