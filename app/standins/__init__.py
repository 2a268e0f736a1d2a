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


def bind_loopback(port: int = 0, *, any_if_taken: bool = False) -> socket.socket:
    """Bind 127.0.0.1 (port 0: the kernel picks a free one) before the app needs its URL.

    With `any_if_taken`, a busy `port` falls back to a free one. The socket names
    IPPROTO_TCP so that asyncio sets TCP_NODELAY on accepted connections, as it does for
    `uvicorn --host --port`: without it every response waits ~40 ms for a delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        if not any_if_taken:
            sock.close()
            raise
        sock.bind(("127.0.0.1", 0))
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
