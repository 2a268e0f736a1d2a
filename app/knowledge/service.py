"""Rules of the knowledge base: ingestion (crawl or upload -> text -> chunks -> vectors) in
the background with visible progress, re-crawls that touch only what changed, and every
change recorded on the site (LOG-2)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.ai.embeddings import Embedder
from app.audit.service import record_site_change
from app.chat.runtime import Runtime
from app.core.db import Database, TenantConnection
from app.core.logging import log_event
from app.core.problems import ApiError
from app.core.security import Principal
from app.core.tenancy import TenantId
from app.knowledge import repository
from app.knowledge.crawler import Crawler, Page
from app.knowledge.extract import chunk_text
from app.knowledge.schemas import DocumentOut, JobOut, UploadOut
from app.knowledge.ssrf import SafeFetcher, SSRFError, check_url
from app.knowledge.storage import upload_key
from app.knowledge.uploads import UploadRejectedError, ValidUpload, validate_upload

log = logging.getLogger("cloop.knowledge")
_NO_SITE = "No such site in this tenant."


async def _language(conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID) -> str:
    language = await repository.site_language(conn, tenant_id, site_id)
    if language is None:
        raise ApiError(404, _NO_SITE)
    return language


async def store_text(
    conn: TenantConnection,
    embedder: Embedder,
    tenant_id: TenantId,
    *,
    site_id: uuid.UUID,
    document_id: uuid.UUID,
    text: str,
    language: str,
) -> int:
    """Chunk, embed and store one document's text; returns the number of chunks."""
    chunks = chunk_text(text)
    if not chunks:
        return 0
    vectors = await embedder.embed(chunks)
    await repository.insert_chunks(
        conn,
        tenant_id,
        site_id,
        document_id,
        chunks=chunks,
        vectors=vectors,
        model=embedder.model,
        config=repository.ts_config(language),
    )
    return len(chunks)


async def start_crawl(
    db: Database, runtime: Runtime, principal: Principal, site_id: uuid.UUID, url: str
) -> JobOut:
    """Record the source and a queued job, then crawl in the background."""
    tenant_id = principal.tenant_id
    try:
        check_url(httpx.URL(url))
    except (SSRFError, httpx.InvalidURL) as exc:
        raise ApiError(422, f"The URL cannot be crawled: {exc}") from None
    async with db.tenant(tenant_id) as conn:
        await _language(conn, tenant_id, site_id)
        source_id = await repository.find_source(conn, tenant_id, site_id, "crawl", url)
        if source_id is None:
            source_id = await repository.insert_source(conn, tenant_id, site_id, "crawl", url)
        job = await repository.insert_job(conn, tenant_id, site_id, source_id)
        await record_site_change(
            conn, actor=str(principal.user_id), tenant_id=tenant_id, site_id=site_id,
            before=None, after={"crawl": url}, kind="knowledge",
        )  # fmt: skip
    runtime.spawn(run_crawl(db, runtime, tenant_id, job["id"]))
    return JobOut.model_validate(job)


@dataclass
class _Crawl:
    """One crawl job's state while it runs."""

    tenant_id: TenantId
    job_id: uuid.UUID
    site_id: uuid.UUID
    source_id: uuid.UUID
    language: str
    known: dict[str, tuple[uuid.UUID, str]]
    progress: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("pages_done", "pages_unchanged", "pages_skipped", "chunks_done"), 0
        )
    )


async def run_crawl(db: Database, runtime: Runtime, tenant_id: TenantId, job_id: uuid.UUID) -> None:
    """The crawl job: new and changed pages are (re)embedded, unchanged ones skipped, pages
    gone from a complete crawl removed. Progress is committed page by page."""
    try:
        async with db.tenant(tenant_id) as conn:
            state, start_url = await _begin(conn, tenant_id, job_id)
        seen: set[str] = set()
        async with SafeFetcher(runtime.fetch_policy) as fetcher:
            async for item in Crawler(fetcher, runtime.crawl_limits).crawl(start_url):
                async with db.tenant(tenant_id) as conn:
                    if isinstance(item, Page):
                        seen.add(item.url)
                        await _store_page(conn, runtime, state, item)
                    else:
                        state.progress["pages_skipped"] += 1
                    await repository.update_job(conn, tenant_id, job_id, **state.progress)
        complete = state.progress["pages_done"] < runtime.limits.crawl_max_pages
        gone = [doc for url, (doc, _) in state.known.items() if url not in seen] if complete else []
        async with db.tenant(tenant_id) as conn:
            await repository.delete_documents(conn, tenant_id, gone)
            await repository.update_job(
                conn, tenant_id, job_id, status="done", detail=f"{len(gone)} page(s) removed"
            )
    except Exception as exc:  # a failed job says so in its row; nothing else depends on it
        log_event(log, "crawl failed", logging.WARNING, job_id=str(job_id), error=repr(exc))
        async with db.tenant(tenant_id) as conn:
            await repository.update_job(
                conn, tenant_id, job_id, status="failed", detail=type(exc).__name__
            )


async def _begin(
    conn: TenantConnection, tenant_id: TenantId, job_id: uuid.UUID
) -> tuple[_Crawl, str]:
    job = await repository.get_job(conn, tenant_id, job_id)
    source = await repository.get_source(conn, tenant_id, job["source_id"]) if job else None
    if job is None or source is None:
        raise LookupError(f"job {job_id} or its source is gone")
    language = await _language(conn, tenant_id, job["site_id"])
    known = await repository.document_hashes(conn, tenant_id, source["id"])
    await repository.update_job(conn, tenant_id, job_id, status="running")
    state = _Crawl(tenant_id, job_id, job["site_id"], source["id"], language, known)
    return state, str(source["location"])


async def _store_page(conn: TenantConnection, runtime: Runtime, state: _Crawl, page: Page) -> None:
    state.progress["pages_done"] += 1
    if page.url in state.known and state.known[page.url][1] == page.content_hash:
        state.progress["pages_unchanged"] += 1
        return
    values = {"url": page.url, "title": page.title, "content_hash": page.content_hash}
    document_id = await repository.upsert_document(
        conn, state.tenant_id, state.site_id, state.source_id, values
    )
    state.progress["chunks_done"] += await store_text(
        conn, runtime.embedder, state.tenant_id, site_id=state.site_id, document_id=document_id,
        text=page.text, language=state.language,
    )  # fmt: skip


async def upload(
    db: Database,
    runtime: Runtime,
    principal: Principal,
    site_id: uuid.UUID,
    *,
    filename: str,
    data: bytes,
) -> UploadOut:
    """Validate, keep the original in object storage, record it, embed in the background.
    A refused file stores nothing; a failed database write removes the stored object."""
    tenant_id = principal.tenant_id
    try:
        valid = validate_upload(filename, data, runtime.limits.max_upload_mb * 1024 * 1024)
    except UploadRejectedError as exc:
        raise ApiError(422, f"The upload was refused: {exc}", title="Upload refused") from None
    async with db.tenant(tenant_id) as conn:
        language = await _language(conn, tenant_id, site_id)
    document_id = uuid.uuid4()
    key = upload_key(tenant_id, document_id)
    await runtime.store.put(key, data, valid.content_type)
    try:
        async with db.tenant(tenant_id) as conn:
            job = await _record_upload(
                conn, principal, site_id, document_id=document_id, key=key, valid=valid, data=data
            )
    except Exception:
        await runtime.store.delete(key)
        raise
    work = _embed_upload(
        db, runtime, tenant_id, job["id"],
        document_id=document_id, text=valid.document.text, language=language,
    )  # fmt: skip
    runtime.spawn(work)
    return UploadOut(document_id=document_id, job=JobOut.model_validate(job))


async def _record_upload(
    conn: TenantConnection,
    principal: Principal,
    site_id: uuid.UUID,
    *,
    document_id: uuid.UUID,
    key: str,
    valid: ValidUpload,
    data: bytes,
) -> dict[str, Any]:
    tenant_id = principal.tenant_id
    source_id = await repository.insert_source(conn, tenant_id, site_id, "upload", valid.filename)
    values = {
        "id": document_id,
        "url": f"upload:{valid.filename}",
        "title": valid.document.title,
        "content_hash": hashlib.sha256(data).hexdigest(),
        "object_key": key,
        "content_type": valid.content_type,
        "byte_size": len(data),
    }
    await repository.upsert_document(conn, tenant_id, site_id, source_id, values)
    job = await repository.insert_job(conn, tenant_id, site_id, source_id)
    await record_site_change(
        conn, actor=str(principal.user_id), tenant_id=tenant_id, site_id=site_id,
        before=None, after={"upload": valid.filename, "bytes": len(data)}, kind="knowledge",
    )  # fmt: skip
    return job


async def _embed_upload(
    db: Database,
    runtime: Runtime,
    tenant_id: TenantId,
    job_id: uuid.UUID,
    *,
    document_id: uuid.UUID,
    text: str,
    language: str,
) -> None:
    try:
        async with db.tenant(tenant_id) as conn:
            job = await repository.get_job(conn, tenant_id, job_id)
            assert job is not None
            count = await store_text(
                conn, runtime.embedder, tenant_id, site_id=job["site_id"], document_id=document_id,
                text=text, language=language,
            )  # fmt: skip
            await repository.update_job(
                conn, tenant_id, job_id, status="done", pages_done=1, chunks_done=count
            )
    except Exception as exc:  # recorded on the job; the original stays for a retry
        log_event(log, "upload embedding failed", logging.WARNING, error=repr(exc))
        async with db.tenant(tenant_id) as conn:
            await repository.update_job(
                conn, tenant_id, job_id, status="failed", detail=type(exc).__name__
            )


async def get_job(conn: TenantConnection, tenant_id: TenantId, job_id: uuid.UUID) -> JobOut:
    job = await repository.get_job(conn, tenant_id, job_id)
    if job is None:
        raise ApiError(404, "No such ingestion job in this tenant.")
    return JobOut.model_validate(job)


async def list_documents(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID
) -> list[DocumentOut]:
    await _language(conn, tenant_id, site_id)
    rows = await repository.list_documents(conn, tenant_id, site_id)
    return [DocumentOut.model_validate(row) for row in rows]


async def delete_document(
    db: Database, runtime: Runtime, principal: Principal, site_id: uuid.UUID, document_id: uuid.UUID
) -> None:
    tenant_id = principal.tenant_id
    async with db.tenant(tenant_id) as conn:
        docs = {d.id: d for d in await list_documents(conn, tenant_id, site_id)}
        if document_id not in docs:
            raise ApiError(404, "No such document on this site.")
        keys = await repository.delete_documents(conn, tenant_id, [document_id])
        await record_site_change(
            conn, actor=str(principal.user_id), tenant_id=tenant_id, site_id=site_id,
            before={"document": docs[document_id].url}, after=None, kind="knowledge",
        )  # fmt: skip
    for key in keys:
        await runtime.store.delete(key)
