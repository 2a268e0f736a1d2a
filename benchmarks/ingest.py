"""Ingestion throughput: crawl a website on loopback, extract, chunk, embed offline (MiniLM
on this machine) and store in Postgres, through the app's crawl job.

Same-run baseline: the embedder alone on the same chunks (the bound on throughput here).
Summary: `pages_per_s= chunks_per_s=` plus the baseline's chunks per second.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import tempfile
import time
import uuid
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from app.ai.embeddings import MiniLMEmbedder
from app.ai.provider import ExtractiveAnswerer
from app.ai.settings import AISettings
from app.chat.runtime import LimitSettings, Runtime
from app.core import embedded
from app.core.db import Database
from app.core.migrations import apply_migrations
from app.knowledge import repository as kb
from app.knowledge import service
from app.knowledge.extract import chunk_text, extract_html
from app.knowledge.ssrf import AddressPolicy
from app.knowledge.storage import ObjectStore, StorageSettings
from app.ratelimit.service import Limiter
from app.standins import bind_loopback, serve_in_thread
from app.widget.demo import seed

VOCABULARY = tuple(
    " ".join(
        (
            "delivery order parcel locker warehouse return refund warranty tent stove backpack",
            "jacket boots rental weekend price euro discount member store opening hours customer",
            "service chat helsinki finland sweden estonia winter summer hiking camping fishing",
            "skiing trail lake",
        )
    ).split()
)


def page_text(rng: random.Random, words: int) -> str:
    sentences: list[str] = []
    while sum(len(s.split()) for s in sentences) < words:
        sentence = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(8, 18)))
        sentences.append(sentence.capitalize() + ".")
    return " ".join(sentences)


def site_app(pages: int, words: int) -> FastAPI:
    """A site of `pages` HTML pages linked from an index page, ~`words` words each."""
    rng = random.Random(3)
    bodies = [page_text(rng, words) for _ in range(pages)]
    app = FastAPI(openapi_url=None)

    @app.get("/")
    def index() -> HTMLResponse:
        links = "".join(f'<li><a href="/p/{n}">Page {n}</a></li>' for n in range(pages))
        return HTMLResponse(f"<html><title>Index</title><body><ul>{links}</ul></body></html>")

    @app.get("/p/{n}")
    def page(n: int) -> HTMLResponse:
        paragraphs = "".join(f"<p>{p}</p>" for p in bodies[n].split(". "))
        return HTMLResponse(f"<html><title>Page {n}</title><body>{paragraphs}</body></html>")

    return app


async def bench(args: argparse.Namespace) -> None:
    sock = bind_loopback()
    site_server = serve_in_thread(site_app(args.pages, args.words), sock)
    with tempfile.TemporaryDirectory(prefix="cloop-bench-") as tmp:
        pg = embedded.start(Path(tmp) / "pg", delete_on_exit=True)
        try:
            pg.prepare("bench")
            await apply_migrations(pg.owner_url("bench"))
            db = Database(pg.app_url("bench"), pg.owner_url("bench"), min_size=1, max_size=4)
            await db.open()
            embedder = MiniLMEmbedder()
            demo = await seed(db, embedder, origin="https://shop.example", documents=())
            runtime = Runtime(
                ai=AISettings(),
                limits=LimitSettings(crawl_max_pages=args.pages + 1, crawl_max_depth=2),
                embedder=embedder,
                provider=ExtractiveAnswerer(),
                store=ObjectStore(StorageSettings()),  # unused: crawls store no originals
                limiter=Limiter(db),
                fetch_policy=AddressPolicy(extra_allowed=(ipaddress.ip_network("127.0.0.1/32"),)),
            )
            await measure(db, runtime, demo.tenant_id, demo.site_id, url=site_server.url, args=args)
            await db.close()
        finally:
            pg.stop()
            site_server.stop()


async def measure(db: Database, runtime: Runtime, tenant_id: object, site_id: uuid.UUID,
                  *, url: str, args: argparse.Namespace) -> None:  # fmt: skip
    async with db.tenant(tenant_id) as conn:  # type: ignore[arg-type]
        source = await kb.insert_source(conn, tenant_id, site_id, "crawl", url + "/")  # type: ignore[arg-type]
        job = await kb.insert_job(conn, tenant_id, site_id, source)  # type: ignore[arg-type]
    started = time.perf_counter()
    await service.run_crawl(db, runtime, tenant_id, job["id"])  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    async with db.tenant(tenant_id) as conn:  # type: ignore[arg-type]
        done = await kb.get_job(conn, tenant_id, job["id"])  # type: ignore[arg-type]
    assert done is not None
    assert done["status"] == "done", done
    pages, chunks = done["pages_done"], done["chunks_done"]
    # Baseline: the embedder alone on the same amount of text, chunked the same way.
    rng = random.Random(3)
    texts = [c for _ in range(args.pages) for c in chunk_text(
        extract_html(f"<p>{page_text(rng, args.words)}</p>".encode()).text)]  # fmt: skip
    started = time.perf_counter()
    await runtime.embedder.embed(texts)
    embed_only = len(texts) / (time.perf_counter() - started)
    print(f"crawled {pages} pages into {chunks} chunks in {elapsed:.1f} s")
    print(f"baseline: embedder alone {embed_only:.1f} chunks/s on {len(texts)} chunks")
    print(f"pages_per_s={pages / elapsed:.2f} chunks_per_s={chunks / elapsed:.2f}"
          f" embed_only_chunks_per_s={embed_only:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--words", type=int, default=400)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
