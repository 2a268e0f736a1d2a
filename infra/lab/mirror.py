"""The lab's package mirror: a caching pass-through to Debian's mirror, on the operator's loopback.

Production hosts use Hetzner's mirror; lab hosts use this one, reached at the slirp gateway
(10.0.2.2, the operator's loopback seen from a lab host). It gives the lab's egress allow-list a
lab-local target and makes repeated `lab up` runs independent of network speed: package files
are kept for good, index files for a few hours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

UPSTREAM = "http://deb.debian.org"
ARCHIVES = ("/debian/", "/debian-security/")
INDEX_TTL_S = 6 * 3600


def cache_file(root: Path, path: str) -> Path | None:
    """Where a request path is cached, or None for paths the mirror does not serve."""
    if not path.startswith(ARCHIVES) or ".." in path.split("/"):
        return None
    return root / path.lstrip("/")


def fresh(file: Path) -> bool:
    """Package files never change under their name; index files do."""
    if not file.is_file():
        return False
    return "/pool/" in file.as_posix() or time.time() - file.stat().st_mtime < INDEX_TTL_S


def fetch(path: str, file: Path) -> int:
    """Download `path` from upstream into `file` atomically; return the HTTP status."""
    try:
        with urllib.request.urlopen(UPSTREAM + path, timeout=60) as response:  # noqa: S310
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f".{file.name}.{os.getpid()}.{time.monotonic_ns()}")
            with partial.open("wb") as out:
                shutil.copyfileobj(response, out)
            partial.replace(file)
            return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def make_handler(root: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def _serve(self, body: bool) -> None:
            file = cache_file(root, self.path.split("?")[0])
            status = 404 if file is None else (200 if fresh(file) else fetch(self.path, file))
            if file is None or status != 200:
                self.send_error(status)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(file.stat().st_size))
            self.end_headers()
            if body:
                with file.open("rb") as data:
                    shutil.copyfileobj(data, self.wfile)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: apt reports what it fetched."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args.cache))
    args.port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
