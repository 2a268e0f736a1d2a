"""Stand-in for Hetzner's metadata service (http://169.254.169.254/hetzner/v1/metadata).

Real servers learn who and where they are from it; the residency checks (RES-1) read it. The
lab runs one per host inside that host's network namespace, bound on 169.254.169.254:80, so a
lab host asks exactly the URL a Hetzner server asks. Answers are YAML documents (the whole
metadata) or plain text (one key), as Hetzner's are.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PREFIX = "/hetzner/v1/metadata"
KEYS = ("hostname", "instance-id", "public-ipv4", "region", "availability-zone", "public-keys")


def to_yaml(value: Any, indent: int = 0) -> str:
    """Just enough YAML for metadata: mappings, lists, strings and numbers, block style."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:\n{to_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        out = []
        for item in value:
            body = to_yaml(item, indent + 2).lstrip() if isinstance(item, dict) else _scalar(item)
            out.append(f"{pad}- {body}")
        return "\n".join(out)
    return pad + _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, list | dict):
        return "[]" if isinstance(value, list) else "{}"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def answer(metadata: dict[str, Any], path: str) -> str | None:
    """The body Hetzner returns for `path`, or None for an unknown path (404)."""
    path = path.rstrip("/")
    if path == PREFIX:
        return to_yaml(metadata) + "\n"
    if path == f"{PREFIX}/private-networks":
        return to_yaml(metadata.get("private-networks", [])) + "\n"
    key = path.removeprefix(PREFIX + "/")
    if path.startswith(PREFIX + "/") and key in KEYS and key in metadata:
        value = metadata[key]
        return to_yaml(value) + "\n" if isinstance(value, list) else str(value)
    return None


def make_handler(metadata: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answer(metadata, self.path.split("?")[0])
            status = 200 if body is not None else 404
            data = (body if body is not None else "not found\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the lab's logs are the hosts' journals."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="169.254.169.254:80")
    parser.add_argument("--data", type=Path, required=True, help="JSON file with the metadata")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    metadata = json.loads(args.data.read_text())
    ThreadingHTTPServer((host, int(port)), make_handler(metadata)).serve_forever()


if __name__ == "__main__":
    main()
