"""The widget demo: a sample knowledge base ingested offline (MiniLM on this machine) and a
page on another origin that embeds the widget under a strict CSP.

Run: `python -m app.widget.demo` starts a throw-away local Postgres, the API and the demo
page on loopback ports and prints the page's URL. `./scripts/app` serves the page next to
its API with `seed_demo` and `page_server`; the browser tests call `seed` and `demo_page`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse

from app.ai.embeddings import Embedder, MiniLMEmbedder
from app.core.db import Database
from app.core.settings import Settings
from app.core.tenancy import TenantId
from app.knowledge import repository as kb
from app.knowledge.service import store_text
from app.sites import repository as sites
from app.tenants import service as tenants
from app.users.service import ensure_user
from app.widget.service import issue_token

SAMPLE_KB: tuple[tuple[str, str], ...] = (
    (
        "Shipping and delivery",
        "Nordlys Outdoor ships from its warehouse in Vantaa, Finland. Orders placed before "
        "14:00 on a working day leave the same day. Delivery takes 1-2 working days in Finland "
        "and 2-4 working days to Sweden, Estonia and Norway. Shipping is free for orders over "
        "80 euros; below that it costs 6.90 euros. Parcels can be picked up at any parcel "
        "locker or delivered home.",
    ),
    (
        "Returns and warranty",
        "You can return unused products within 60 days for a full refund. Returns are free "
        "inside Finland: print the return label from your order confirmation. Tents, stoves and "
        "backpacks have a 3-year warranty; other products 2 years. Warranty claims need the "
        "order number and a photo of the fault.",
    ),
    (
        "Store and opening hours",
        "Our store is at Mannerheimintie 12, Helsinki. Opening hours: Monday to Friday 10-19, "
        "Saturday 10-17, Sunday closed. Customer service answers by chat and e-mail on working "
        "days 9-16.",
    ),
    (
        "Tent rental",
        "Tents and sleeping bags can be rented for weekend trips. A two-person tent costs 35 "
        "euros per weekend and a sleeping bag 15 euros. Rental gear is picked up in the "
        "Helsinki store on Friday and returned by Monday noon.",
    ),
)


@dataclass(frozen=True)
class DemoSite:
    """The demo tenant's site and the embed token the page uses."""

    tenant_id: TenantId
    site_id: uuid.UUID
    token: str


async def seed(
    db: Database,
    embedder: Embedder,
    *,
    origin: str,
    documents: tuple[tuple[str, str], ...] = SAMPLE_KB,
    name: str = "Nordlys Outdoor",
) -> DemoSite:
    """A tenant with one site allowed on `origin`, its KB ingested, and an embed token."""
    tag = uuid.uuid4().hex[:8]
    async with db.unscoped() as conn:
        owner = await ensure_user(conn, f"demo-{tag}@example.test", "Demo Owner")
    tenant_id = await tenants.create_tenant(db, name, owner)
    async with db.tenant(tenant_id) as conn:
        values = {
            "name": name,
            "allowed_origins": [origin],
            "persona": "a helpful shop assistant",
            "language": "en",
            "phase": "pre-sales",
        }
        site_id = (await sites.insert_site(conn, tenant_id, values))["id"]
        source_id = await kb.insert_source(conn, tenant_id, site_id, "upload", "sample-kb")
        for title, text in documents:
            doc = {"url": f"upload:{title}", "title": title, "content_hash": str(hash(text))}
            document_id = await kb.upsert_document(conn, tenant_id, site_id, source_id, doc)
            await store_text(
                conn, embedder, tenant_id, site_id=site_id, document_id=document_id,
                text=text, language="en",
            )  # fmt: skip
        token = (await issue_token(conn, tenant_id, site_id, None)).token
    return DemoSite(tenant_id, site_id, token)


def page_html(api_origin: str, token: str, title: str = "Nordlys Outdoor") -> str:
    """A customer's page: its own content plus the one script tag that embeds the widget."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/demo.css"></head>
<body><main><h1>{title}</h1>
<p>This page is served from another origin than the chat API. It embeds the Cloop widget
with one script tag under a strict Content-Security-Policy. Open the chat bubble and ask,
for example, <em>How long does delivery to Sweden take?</em></p></main>
<script src="{api_origin}/api/v1/widget/widget.js" data-token="{token}" defer></script>
</body></html>"""


def strict_csp(api_origin: str) -> str:
    """No inline script, no eval, nothing but this page and the chat API."""
    return (
        f"default-src 'none'; script-src {api_origin}; connect-src {api_origin}; "
        "style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def demo_page(api_origin: str, token: str) -> FastAPI:
    """The ASGI app of the demo page (served on its own origin)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    headers = {"Content-Security-Policy": strict_csp(api_origin), "Referrer-Policy": "no-referrer"}

    @app.get("/")
    def index() -> HTMLResponse:
        return HTMLResponse(page_html(api_origin, token), headers=headers)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204, headers=headers)

    @app.get("/demo.css")
    def css() -> Response:
        body = "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto}"
        return Response(body, media_type="text/css", headers=headers)

    return app


async def seed_demo(settings: Settings, page_origin: str) -> DemoSite:
    """The sample knowledge base, embedded offline, for a page served on `page_origin`."""
    db = Database.from_settings(settings)
    await db.open()
    try:
        return await seed(db, MiniLMEmbedder(), origin=page_origin)
    finally:
        await db.close()


def page_server(api_origin: str, token: str) -> uvicorn.Server:
    """The demo page's server (serve it on its own socket: another origin than the API)."""
    config = uvicorn.Config(
        demo_page(api_origin, token), log_level="warning", access_log=False, lifespan="off"
    )
    return uvicorn.Server(config)


async def serve(settings: Settings, api_port: int, page_port: int) -> None:
    """Seed a demo tenant, then serve the API and the demo page until interrupted."""
    from app.core.main import create_app  # noqa: PLC0415 - main imports this package's routers
    from app.standins import base_url, bind_loopback  # noqa: PLC0415 - dev tooling only

    api_sock, page_sock = bind_loopback(api_port), bind_loopback(page_port)
    api_origin, page_origin = base_url(api_sock), base_url(page_sock)
    demo = await seed_demo(settings, page_origin)
    api = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    print(f"Cloop API:   {api_origin}", flush=True)
    print(f"Widget demo: {page_origin}/  (open it in a browser)", flush=True)
    await asyncio.gather(
        api.serve([api_sock]), page_server(api_origin, demo.token).serve([page_sock])
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """A throw-away local Postgres, migrations, the sample KB, the API and the demo page."""
    from app.core import embedded  # noqa: PLC0415 - an ops/dev dependency
    from app.core.migrations import apply_migrations  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-port", type=int, default=0)
    parser.add_argument("--page-port", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # stop like Ctrl-C: Postgres is shut down too
    with tempfile.TemporaryDirectory(prefix="cloop-demo-") as tmp:
        server = embedded.start(Path(tmp) / "pg", delete_on_exit=True)
        try:
            server.prepare("cloop_demo")
            asyncio.run(apply_migrations(server.owner_url("cloop_demo")))
            settings = Settings(
                database_url=server.app_url("cloop_demo"),
                owner_database_url=server.owner_url("cloop_demo"),
                migrate_on_start=False,
            )
            asyncio.run(serve(settings, args.api_port, args.page_port))
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


if __name__ == "__main__":
    main()
