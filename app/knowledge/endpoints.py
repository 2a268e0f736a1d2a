"""HTTP for a site's knowledge base: crawls, uploads, documents and ingestion jobs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile

from app.chat.runtime import KbRuntime
from app.core.deps import Db, TenantConn, require_feature, require_permission
from app.core.problems import ApiError
from app.core.security import Principal
from app.knowledge import service
from app.knowledge.schemas import CrawlIn, DocumentOut, JobOut, UploadOut

router = APIRouter(prefix="/api/v1/sites/{site_id}/knowledge", tags=["knowledge"])

CanRead = Annotated[Principal, require_permission("knowledge:read")]
CanWrite = Annotated[Principal, require_permission("knowledge:write")]


@router.post("/crawls", status_code=202, dependencies=[require_feature("crawler")])
async def start_crawl(
    site_id: uuid.UUID, body: CrawlIn, principal: CanWrite, db: Db, runtime: KbRuntime
) -> JobOut:
    return await service.start_crawl(db, runtime, principal, site_id, body.url)


@router.post("/uploads", status_code=202)
async def upload(
    site_id: uuid.UUID,
    file: Annotated[UploadFile, File()],
    principal: CanWrite,
    db: Db,
    runtime: KbRuntime,
) -> UploadOut:
    limit = runtime.limits.max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)  # one byte more than allowed is enough to refuse
    if not file.filename:
        raise ApiError(422, "The upload has no file name.")
    return await service.upload(db, runtime, principal, site_id, filename=file.filename, data=data)


@router.get("/documents")
async def list_documents(
    site_id: uuid.UUID, principal: CanRead, conn: TenantConn
) -> list[DocumentOut]:
    return await service.list_documents(conn, principal.tenant_id, site_id)


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(
    site_id: uuid.UUID, document_id: uuid.UUID, principal: CanWrite, db: Db, runtime: KbRuntime
) -> Response:
    await service.delete_document(db, runtime, principal, site_id, document_id)
    return Response(status_code=204)


@router.get("/jobs/{job_id}")
async def get_job(
    site_id: uuid.UUID, job_id: uuid.UUID, principal: CanRead, conn: TenantConn
) -> JobOut:
    job = await service.get_job(conn, principal.tenant_id, job_id)
    if job.site_id != site_id:
        raise ApiError(404, "No such ingestion job on this site.")
    return job
