"""Latency the chat path adds before the first token, at 16 concurrent sessions.

The API (one uvicorn worker, a real Postgres, the offline MiniLM embedder for the query) and
a zero-latency OpenAI-compatible stand-in each run as their own process on loopback. The
same client measures, in the same run and in alternating rounds (both see the same load),
time to first token (a) straight from the stand-in (the baseline) and (b) through
`POST /api/v1/widget/{token}/chat`: token and origin check, quotas in Postgres, session +
message rows, query embedding, hybrid retrieval, prompt building, the provider call, SSE
relay. Added latency = (b) - (a), per percentile.
Summary: `p50_ms= p99_ms=` (added latency) plus the raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.ai.embeddings import MiniLMEmbedder
from app.core import embedded
from app.core.db import Database
from app.core.migrations import apply_migrations
from app.widget.demo import seed

ORIGIN = "https://shop.example"
QUESTIONS = (
    "How long does delivery to Sweden take?",
    "Are returns free?",
    "When is the Helsinki store open?",
    "How much does renting a tent cost?",
    "What is the warranty on stoves?",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def first_token_ms(http: httpx.AsyncClient, method: str, url: str, body: dict[str, object],
                         headers: dict[str, str]) -> float:  # fmt: skip
    """Milliseconds from sending the request to the first content delta in the SSE stream."""
    start = time.perf_counter()
    async with http.stream(method, url, json=body, headers=headers) as response:
        response.raise_for_status()
        elapsed = None
        async for line in response.aiter_lines():  # read to the end: the whole answer streams
            if elapsed is None and (line.startswith("event: delta") or '"content"' in line):
                elapsed = (time.perf_counter() - start) * 1000
    if elapsed is None:
        raise RuntimeError("no token in the stream")
    return elapsed


async def load(sessions: int, rounds: int, call: object, first: int = 0) -> list[float]:
    """`sessions` concurrent clients, each sending `rounds` requests one after another."""

    async def session(n: int) -> list[float]:
        return [await call(n, r) for r in range(first, first + rounds)]  # type: ignore[operator]

    results = await asyncio.gather(*(session(n) for n in range(sessions)))
    return [ms for times in results for ms in times]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cloop-bench-") as tmp:
        pg = embedded.start(Path(tmp) / "pg", delete_on_exit=True)
        children: list[subprocess.Popen[bytes]] = []
        try:
            pg.prepare("bench")
            await apply_migrations(pg.owner_url("bench"))
            db = Database(pg.app_url("bench"), pg.owner_url("bench"), min_size=1, max_size=2)
            await db.open()
            site = await seed(db, MiniLMEmbedder(), origin=ORIGIN)
            await db.close()
            llm_port, api_port = free_port(), free_port()
            children.append(subprocess.Popen(
                [sys.executable, "-m", "app.standins.llm", "--port", str(llm_port)],
                stdout=subprocess.DEVNULL,
            ))  # fmt: skip
            env = os.environ | {
                "CLOOP_DATABASE_URL": pg.app_url("bench"),
                "CLOOP_OWNER_DATABASE_URL": pg.owner_url("bench"),
                "CLOOP_MIGRATE_ON_START": "false",
                "CLOOP_LOG_LEVEL": "WARNING",
                "CLOOP_AI_PROVIDER": "nebius",
                "CLOOP_AI_BASE_URL": f"http://127.0.0.1:{llm_port}/v1/",
                "CLOOP_LIMIT_IP_PER_SECOND": "100000",
                "CLOOP_LIMIT_IP_PER_MINUTE": "1000000",
                "CLOOP_LIMIT_IP_PER_HOUR": "1000000",
                "CLOOP_LIMIT_TOKEN_PER_MINUTE": "1000000",
                "CLOOP_LIMIT_TOKEN_PER_HOUR": "1000000",
                "CLOOP_LIMIT_TENANT_PER_MINUTE": "1000000",
            }
            children.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "app.core.main:create_app",
                 "--host", "127.0.0.1", "--port", str(api_port), "--log-level", "warning",
                 "--no-access-log"],
                env=env,
            ))  # fmt: skip
            await wait_up(f"http://127.0.0.1:{api_port}/healthz")
            await wait_up(f"http://127.0.0.1:{llm_port}/")
            await measure(args, site.token, api_port, llm_port)
        finally:
            for child in children:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            pg.stop()


async def measure(args: argparse.Namespace, token: str, api_port: int, llm_port: int) -> None:
    limits = httpx.Limits(max_connections=args.sessions * 2)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        direct_url = f"http://127.0.0.1:{llm_port}/v1/chat/completions"
        chat_url = f"http://127.0.0.1:{api_port}/api/v1/widget/{token}/chat"

        async def direct(n: int, r: int) -> float:
            body = {"model": "m", "stream": True,
                    "messages": [{"role": "user", "content": QUESTIONS[(n + r) % 5]}]}  # fmt: skip
            return await first_token_ms(http, "POST", direct_url, body, {})

        async def via_api(n: int, r: int) -> float:
            body: dict[str, object] = {"message": QUESTIONS[(n + r) % 5],
                                       "visitor_id": f"bench-visitor-{n:04d}"}  # fmt: skip
            return await first_token_ms(http, "POST", chat_url, body, {"Origin": ORIGIN})

        await load(args.sessions, 2, via_api)  # warm-up: model, pools, caches
        await load(args.sessions, 2, direct)
        baseline: list[float] = []
        through: list[float] = []
        for r in range(args.rounds):  # interleaved: both see the same machine load
            baseline += await load(args.sessions, 1, direct, first=r)
            through += await load(args.sessions, 1, via_api, first=r)
    n = len(through)
    print(f"{n} chats at {args.sessions} concurrent sessions")
    print(f"baseline (stand-in direct) first token: p50={pct(baseline, 0.5):.1f} ms"
          f" p99={pct(baseline, 0.99):.1f} ms")  # fmt: skip
    print(f"through the chat API first token:       p50={pct(through, 0.5):.1f} ms"
          f" p99={pct(through, 0.99):.1f} ms mean={statistics.mean(through):.1f} ms")  # fmt: skip
    added50 = pct(through, 0.5) - pct(baseline, 0.5)
    added99 = pct(through, 0.99) - pct(baseline, 0.99)
    print(json.dumps({"sessions": args.sessions, "chats": n}))
    print(f"p50_ms={added50:.1f} p99_ms={added99:.1f} api_p50_ms={pct(through, 0.5):.1f}"
          f" baseline_p50_ms={pct(baseline, 0.5):.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
