"""Run Cloop on this machine: ``./scripts/app`` (``python -m app.core.devserver``).

Embedded PostgreSQL (data kept in ``.cache/app``), migrations, a signing key, the OIDC
provider stand-in when present, then the API on loopback, with a ready session printed so a
newcomer can call the API at once, and the widget demo: a page on another origin embedding the
widget over a sample knowledge base ingested offline. A development tool: hosts run uvicorn
under systemd.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from app.core import embedded
from app.core.main import create_app
from app.core.migrations import apply_migrations
from app.core.security import write_new_key
from app.core.settings import Settings
from app.standins import base_url, bind_loopback
from app.widget.demo import page_server, seed_demo

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".cache" / "app"
DATABASE = "cloop"
OIDC_STANDIN = REPO / "app" / "standins" / "oidc.py"
DEV_EMAIL = "dev@example.com"


def _start_oidc_standin() -> tuple[subprocess.Popen[str] | None, dict[str, str]]:
    """The sign-in stand-in (a real OIDC/OAuth server on loopback) and the settings for it."""
    if not OIDC_STANDIN.exists():
        return None, {}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.standins.oidc", "--email", DEV_EMAIL],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise RuntimeError("the OIDC stand-in did not start")
    env: dict[str, str] = json.loads(line)["env"]
    return process, env


async def _demo_sign_in(api: str) -> dict[str, str]:
    """Sign the dev account in through the real flow: start, provider, callback."""
    async with httpx.AsyncClient(timeout=10) as http:
        start = await http.post(f"{api}/api/v1/signin/google/start")
        start.raise_for_status()
        redirect = await http.get(start.json()["authorization_url"])
        query = parse_qs(urlsplit(redirect.headers["location"]).query)
        body = {"code": query["code"][0], "state": query["state"][0]}
        tokens = await http.post(f"{api}/api/v1/signin/callback", json=body)
        tokens.raise_for_status()
        pair: dict[str, str] = tokens.json()
        return pair


def _banner(
    api: str, demo: str, state: Path, pair: dict[str, str] | None, problem: str | None
) -> str:
    lines = [
        "",
        f"Cloop API:   {api}   (interactive docs: {api}/docs)",
        f"Widget demo: {demo}/   (another origin; open it in a browser and chat)",
        f"Data:        {state}   (./scripts/app --reset starts afresh)",
    ]
    if pair:
        lines += [
            f"Signed in as {DEV_EMAIL} through the OIDC stand-in (Owner of a new tenant):",
            f"  export TOKEN={pair['access_token']}",
            f'  curl -s -H "Authorization: Bearer $TOKEN" {api}/api/v1/users/me',
            f"  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json'"
            f' -d \'{{"name": "My site"}}\' {api}/api/v1/sites',
            f"Access tokens last 10 minutes; renew with POST {api}/api/v1/auth/refresh",
            f'  {{"refresh_token": "{pair["refresh_token"]}"}}',
        ]
    else:
        lines.append(
            f"No ready session ({problem}); sign in: POST {api}/api/v1/signin/google/start"
        )
    lines += ["Stop with Ctrl-C.", ""]
    return "\n".join(lines)


async def _serve(
    settings: Settings, sock: socket.socket, page_sock: socket.socket, state: Path, sign_in: bool
) -> None:
    """The API and the widget demo page, each on its own loopback origin, until interrupted."""
    api, page = base_url(sock), base_url(page_sock)
    demo = await seed_demo(settings, page)
    config = uvicorn.Config(create_app(settings), log_config=None, access_log=False)
    server, page_srv = uvicorn.Server(config), page_server(api, demo.token)
    serving = asyncio.gather(server.serve(sockets=[sock]), page_srv.serve(sockets=[page_sock]))
    while not (server.started and page_srv.started) and not serving.done():
        await asyncio.sleep(0.05)
    pair, problem = None, "no sign-in stand-in"
    if sign_in and server.started:
        try:
            pair = await _demo_sign_in(api)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            problem = f"demo sign-in failed: {exc}"
    print(_banner(api, page, state, pair, problem), file=sys.stderr, flush=True)
    await serving


def main() -> int:
    parser = argparse.ArgumentParser(prog="./scripts/app", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="loopback port (busy: any free)")
    parser.add_argument("--demo-port", type=int, default=8001, help="widget demo page port")
    parser.add_argument("--data", type=Path, default=STATE, help="where local data is kept")
    parser.add_argument("--reset", action="store_true", help="delete the local data first")
    args = parser.parse_args()
    state: Path = args.data.resolve()
    if args.reset:
        shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    keys = state / "keys"
    if not list(keys.glob("*.pem")):
        write_new_key(keys)
    postgres = embedded.start(state / "pg", delete_on_exit=False)
    standin = None
    try:
        postgres.prepare(DATABASE)
        asyncio.run(apply_migrations(postgres.owner_url(DATABASE)))
        standin, env = _start_oidc_standin()
        sock = bind_loopback(args.port, any_if_taken=True)
        page_sock = bind_loopback(args.demo_port, any_if_taken=True)
        api = base_url(sock)
        os.environ.update(env)
        os.environ.setdefault("CLOOP_SIGNIN_PUBLIC_URL", api)
        os.environ.setdefault("CLOOP_SIGNIN_REDIRECT_URI", f"{api}/signin/callback")
        settings = Settings(
            database_url=postgres.app_url(DATABASE),
            owner_database_url=postgres.owner_url(DATABASE),
            signing_keys_dir=keys,
            migrate_on_start=False,
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(settings, sock, page_sock, state, sign_in=standin is not None))
    except Exception as exc:  # one clear line for a newcomer, never a traceback
        print(f"./scripts/app failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if standin is not None:
            standin.terminate()
            standin.wait(timeout=10)
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
