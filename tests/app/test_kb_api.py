"""The knowledge-base API: uploads validated with nothing stored on refusal (VAL-3) and
originals kept under the tenant's prefix; crawls in the background with progress, SSRF
refusals (VAL-2) and re-crawls that touch only what changed; vectors stored and searched
in the local Postgres with an HNSW index per model (RES-6)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator

import httpx
import pytest

from app.chat.runtime import Runtime
from app.core.db import Database
from app.knowledge import repository as kb
from app.knowledge.ssrf import AddressPolicy
from app.knowledge.storage import StorageSettings, tenant_prefix
from tests.app.kb_files import LoopbackSite, make_docx, make_pdf
from tests.app.kb_fixtures import (
    WidgetSite,
    embedder,
    ingest,
    llm,
    object_keys,
    runtime,
    s3_settings,
    upload,
    wait_for_job,
    widget_site,
)
from tests.conftest import REPO

__all__ = ["embedder", "llm", "runtime", "s3_settings", "widget_site"]
pytestmark = pytest.mark.anyio
ELF = b"\x7fELF\x02\x01\x01" + bytes(300)


async def kb_rows(db: Database, site: WidgetSite) -> dict[str, int]:
    counts = {}
    async with db.tenant(site.tenant.id) as conn:
        for table in ("kb_sources", "kb_documents", "kb_chunks", "kb_jobs"):
            cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")  # noqa: S608 - fixed names
            row = await cur.fetchone()
            counts[table] = int(row["n"]) if row else -1
    return counts


@pytest.fixture
def site_server() -> Iterator[LoopbackSite]:
    running = LoopbackSite().start()
    running.pages |= {
        "/": ("text/html", b'<title>Home</title><p>Kettu Cafe.</p><a href="/menu">Menu</a>'),
        "/menu": ("text/html", b"<title>Menu</title><p>Cinnamon buns cost 4 euros.</p>"),
    }  # fmt: skip
    yield running
    running.stop()


@pytest.mark.claim("VAL-3", "RES-3", "LOG-2")
async def test_upload_keeps_the_original_under_the_tenant_prefix_and_embeds_it(
    client: httpx.AsyncClient,
    widget_site: WidgetSite,
    *,
    runtime: Runtime,
    s3_settings: StorageSettings,
    db: Database,
) -> None:
    pdf = make_pdf("Parking is free on Sundays")
    response = await upload(client, widget_site, "guide.pdf", pdf)
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, widget_site, response.json()["job"]["id"])
    assert job["status"] == "done"
    assert job["chunks_done"] == 1
    docs = (
        await client.get(f"{widget_site.base}/knowledge/documents", headers=widget_site.admin)
    ).json()
    assert [(d["title"], d["content_type"], d["chunks"]) for d in docs] == [
        ("guide.pdf", "application/pdf", 1)
    ]
    keys = object_keys(s3_settings, tenant_prefix(widget_site.tenant.id))
    assert keys == [f"{tenant_prefix(widget_site.tenant.id)}uploads/{docs[0]['id']}"]
    deleted = await client.delete(
        f"{widget_site.base}/knowledge/documents/{docs[0]['id']}", headers=widget_site.admin
    )
    assert deleted.status_code == 204
    assert object_keys(s3_settings, tenant_prefix(widget_site.tenant.id)) == []
    async with db.tenant(widget_site.tenant.id) as conn:
        cur = await conn.execute(
            "SELECT actor, before, after FROM site_changes WHERE kind = 'knowledge' ORDER BY id"
        )
        changes = [(r["actor"], r["before"], r["after"]) for r in await cur.fetchall()]
    actor = str(widget_site.tenant.admin.id)
    assert changes == [
        (actor, None, {"upload": "guide.pdf", "bytes": len(pdf)}),
        (actor, {"document": "upload:guide.pdf"}, None),
    ]


@pytest.mark.claim("VAL-3")
@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("big.txt", b"a" * (1024 * 1024 + 1), "larger than 1 MiB"),
        ("invoice.pdf", ELF, "content is binary"),
        ("letter.docx", make_pdf("hi"), "content is pdf"),
        ("notes.pdf", make_docx("hi"), "content is docx"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", "PDF cannot be read"),
        ("tool.exe", ELF, "unsupported file type"),
    ],
)
async def test_refused_uploads_store_nothing(
    client: httpx.AsyncClient,
    *,
    widget_site: WidgetSite,
    runtime: Runtime,
    db: Database,
    s3_settings: StorageSettings,
    name: str,
    data: bytes,
    reason: str,
) -> None:
    response = await upload(client, widget_site, name, data)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert reason in response.json()["detail"]
    assert await kb_rows(db, widget_site) == dict.fromkeys(
        ("kb_sources", "kb_documents", "kb_chunks", "kb_jobs"), 0
    )
    assert object_keys(s3_settings, tenant_prefix(widget_site.tenant.id)) == []


@pytest.mark.claim("VAL-3")
async def test_a_failed_database_write_leaves_no_object_behind(
    client: httpx.AsyncClient,
    *,
    widget_site: WidgetSite,
    runtime: Runtime,
    db: Database,
    s3_settings: StorageSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database write failed")

    monkeypatch.setattr(kb, "insert_source", broken)
    response = await upload(client, widget_site, "faq.txt", b"Opening hours are 9-17.")
    assert response.status_code == 500
    assert object_keys(s3_settings, tenant_prefix(widget_site.tenant.id)) == []
    assert await kb_rows(db, widget_site) == dict.fromkeys(
        ("kb_sources", "kb_documents", "kb_chunks", "kb_jobs"), 0
    )


async def test_crawl_runs_in_the_background_and_recrawl_touches_only_changes(
    client: httpx.AsyncClient, widget_site: WidgetSite, runtime: Runtime, site_server: LoopbackSite
) -> None:
    async def crawl() -> dict[str, object]:
        started = await client.post(
            f"{widget_site.base}/knowledge/crawls", json={"url": site_server.url + "/"},
            headers=widget_site.admin,
        )  # fmt: skip
        assert started.status_code == 202, started.text
        assert started.json()["status"] == "queued"
        return await wait_for_job(client, widget_site, started.json()["id"])

    first = await crawl()
    assert (first["status"], first["pages_done"], first["pages_unchanged"]) == ("done", 2, 0)
    site_server.pages["/menu"] = ("text/html", b"<title>Menu</title><p>Buns cost 5 euros.</p>")
    second = await crawl()
    assert (second["pages_done"], second["pages_unchanged"]) == (2, 1)


@pytest.mark.claim("VAL-2")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://0x7f.1:{port}/",
        "http://localhost:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:7f00:1]:{port}/",
    ],
)
async def test_crawls_of_internal_addresses_fetch_nothing(
    client: httpx.AsyncClient,
    widget_site: WidgetSite,
    runtime: Runtime,
    site_server: LoopbackSite,
    url: str,
) -> None:
    runtime.fetch_policy = AddressPolicy()  # production policy: no loopback exception
    started = await client.post(
        f"{widget_site.base}/knowledge/crawls", json={"url": url.format(port=site_server.port)},
        headers=widget_site.admin,
    )  # fmt: skip
    assert started.status_code == 202, started.text
    job = await wait_for_job(client, widget_site, started.json()["id"])
    assert (job["status"], job["pages_done"], job["pages_skipped"]) == ("done", 0, 1)
    assert sum(site_server.hits.values()) == 0


@pytest.mark.claim("VAL-2")
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"])
async def test_crawl_urls_other_than_http_are_refused(
    client: httpx.AsyncClient, widget_site: WidgetSite, runtime: Runtime, url: str
) -> None:
    started = await client.post(
        f"{widget_site.base}/knowledge/crawls", json={"url": url}, headers=widget_site.admin
    )
    assert started.status_code == 422


@pytest.mark.claim("RES-6")
async def test_vectors_are_stored_with_their_model_and_searched_by_hnsw_in_postgres(
    client: httpx.AsyncClient, widget_site: WidgetSite, runtime: Runtime, db: Database
) -> None:
    await ingest(client, widget_site, "faq.txt", "Delivery takes two days. " * 40)
    async with db.tenant(widget_site.tenant.id) as conn:
        cur = await conn.execute(
            "SELECT embedding_model, vector_dims(embedding) AS dims FROM kb_chunks"
        )
        rows = await cur.fetchall()
        assert {(r["embedding_model"], r["dims"]) for r in rows} == {(runtime.embedder.model, 384)}
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # 2 rows only:
            await conn.execute(f"SET LOCAL {setting} = off")  # show that the index serves
        vector = (await runtime.embedder.embed(["delivery time"]))[0]
        cur = await conn.execute(
            "EXPLAIN SELECT id FROM kb_chunks WHERE tenant_id = %s AND embedding_model ="
            " 'all-MiniLM-L6-v2-onnx-int8' ORDER BY embedding <=> %s::vector LIMIT 5",
            [widget_site.tenant.id, kb.vector_literal(vector)],
        )
        plan = " ".join(str(r["QUERY PLAN"]) for r in await cur.fetchall())
    assert "kb_chunks_minilm_hnsw" in plan


@pytest.mark.claim("RES-6")
def test_no_external_vector_database_client_is_a_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = [d.lower() for d in project["dependencies"]]
    for group in project["optional-dependencies"].values():
        deps += [d.lower() for d in group]
    vector_services = ("pinecone", "weaviate", "qdrant", "chromadb", "milvus", "pymilvus", "faiss")
    assert not [d for d in deps if d.startswith(vector_services)]
    assert any(d.startswith("psycopg") for d in deps)
