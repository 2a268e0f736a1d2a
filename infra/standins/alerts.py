"""The operator's paging endpoint, for the lab and the tests: receives the hosts' alerts (OPS-2).

Hosts POST each alert as JSON with a bearer token (group_data/all.py `monitoring`, the token from
the environment's secret store). This stand-in accepts exactly that on loopback, refuses a wrong
token with 401 (the hosts then keep the alert and retry) and appends each accepted alert as one
JSON line to a file, where the lab's checks, and an operator with `tail -f`, read them.

    python -m infra.standins.alerts --environment lab --log .lab/alerts.jsonl --port-file P
"""

from __future__ import annotations

import argparse
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.deploy.hostdata import ALERT_TOKEN
from infra.deploy.secrets import secret

MAX_BODY = 64 * 1024


def read_alerts(log: Path) -> list[dict[str, Any]]:
    """Every alert received so far, oldest first."""
    if not log.exists():
        return []
    return [json.loads(line)["alert"] for line in log.read_text().splitlines() if line]


def _handler(token: str, log: Path) -> type[http.server.BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            given = self.headers.get("Authorization", "")
            length = int(self.headers.get("Content-Length") or 0)
            if not hmac.compare_digest(given, f"Bearer {token}"):
                self._answer(401)
            elif not 0 < length <= MAX_BODY:
                self._answer(413)
            else:
                try:
                    alert = json.loads(self.rfile.read(length))
                except ValueError:
                    self._answer(400)
                    return
                line = json.dumps({"received": time.time(), "alert": alert}, sort_keys=True)
                with lock, log.open("a") as out:
                    out.write(line + "\n")
                self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """Quiet: the alert log is the record."""

    return Handler


@contextmanager
def running(token: str, log: Path, port: int = 0) -> Iterator[str]:
    """Serve on 127.0.0.1 (an ephemeral port unless given); yields the webhook URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(token, log))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="The operator's paging endpoint (stand-in).")
    parser.add_argument("--environment", required=True, help="whose secret store holds the token")
    parser.add_argument("--log", required=True, type=Path, help="JSON lines of received alerts")
    parser.add_argument("--port-file", required=True, type=Path, help="where to write the port")
    args = parser.parse_args()
    token = secret(args.environment, ALERT_TOKEN)
    with running(token, args.log) as url:
        args.port_file.write_text(url.rsplit(":", 1)[1].split("/")[0])
        threading.Event().wait()


if __name__ == "__main__":
    main()
