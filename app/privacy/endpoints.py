"""HTTP for data-subject rights: export, erasure, restriction/objection, requests, retention."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.core.deps import CurrentPrincipal, Db, TenantConn, require_permission
from app.core.problems import ApiError
from app.core.security import Principal
from app.privacy import service
from app.privacy.catalog import Subject
from app.privacy.schemas import (
    ErasureOut,
    RequestClose,
    RequestExtension,
    RequestIn,
    RequestOut,
    RestrictionIn,
    RestrictionKind,
    RestrictionOut,
    RetentionIn,
    RetentionOut,
    TenantErasure,
    VisitorErased,
    VisitorRef,
)

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])

CanExport = Annotated[Principal, require_permission("data:export")]
CanErase = Annotated[Principal, require_permission("data:erase")]
CanRead = Annotated[Principal, require_permission("tenant:read")]
CanUpdate = Annotated[Principal, require_permission("tenant:update")]
Format = Annotated[Literal["json", "csv"], Query(description="csv needs `table`")]
TableName = Annotated[str | None, Query(max_length=63, description="the table, for csv")]


async def _stream(
    db: Db, conn: TenantConn, principal: Principal, subject: Subject, *, fmt: str, table: str | None
) -> StreamingResponse:
    """Record the access request as answered, then stream JSON or one table as CSV."""
    await service.record_export(conn, principal.tenant_id, subject)
    name = f"cloop-{subject.kind.value}-export"
    body: AsyncIterator[bytes]
    if fmt == "csv":
        tables = await service.export_tables(db, subject)
        if table not in tables:
            raise ApiError(422, f"csv needs table= one of {tables}.", tables=tables)
        body, media, name = service.export_csv(db, subject, table), "text/csv", f"{name}-{table}"
    else:
        body, media = service.export_json(db, subject), "application/json"
    ext = "csv" if fmt == "csv" else "json"
    disposition = {"Content-Disposition": f'attachment; filename="{name}.{ext}"'}
    return StreamingResponse(body, media_type=media, headers=disposition)


@router.get("/export-schema")
async def export_schema(_: CurrentPrincipal) -> dict[str, Any]:
    """The JSON Schema every JSON export follows (GDPR-20: a documented format)."""
    return service.export_schema()


@router.get("/export/account")
async def export_account(
    db: Db,
    principal: CurrentPrincipal,
    conn: TenantConn,
    format: Format = "json",
    table: TableName = None,
) -> StreamingResponse:
    """Everything held about you: your account, memberships, sessions, audit entries."""
    subject = await service.account_subject(conn, principal.user_id)
    return await _stream(db, conn, principal, subject, fmt=format, table=table)


@router.get("/export/tenant")
async def export_tenant(
    db: Db,
    principal: CanExport,
    conn: TenantConn,
    format: Format = "json",
    table: TableName = None,
) -> StreamingResponse:
    """Every row of your tenant, in every table that holds tenant data."""
    subject = service.tenant_subject(principal.tenant_id)
    return await _stream(db, conn, principal, subject, fmt=format, table=table)


@router.get("/export/visitor")
async def export_visitor(
    db: Db,
    principal: CanExport,
    conn: TenantConn,
    *,
    ref: Annotated[VisitorRef, Query()],
    format: Format = "json",
    table: TableName = None,
) -> StreamingResponse:
    """A visitor's conversations, lead and flags, found by visitor id or e-mail."""
    subject = await service.resolve_visitor(conn, principal.tenant_id, ref.visitor_id, ref.email)
    return await _stream(db, conn, principal, subject, fmt=format, table=table)


@router.post("/erasure/tenant", status_code=202)
async def erase_tenant(db: Db, principal: CanErase, body: TenantErasure) -> ErasureOut:
    """Delete your tenant: off at once (sign-in, widget), every trace purged within 30 days."""
    return await service.erase_tenant(db, principal, body.confirm_tenant_id)


@router.post("/erasure/account", status_code=202)
async def erase_account(db: Db, principal: CurrentPrincipal, _conn: TenantConn) -> ErasureOut:
    """Delete your account: off at once, purged within 30 days."""
    return await service.erase_account(db, principal)


@router.post("/erasure/visitor")
async def erase_visitor(
    db: Db, principal: CanErase, conn: TenantConn, body: VisitorRef
) -> VisitorErased:
    """Remove a visitor's conversations, lead and everything else about them, now."""
    subject = await service.resolve_visitor(conn, principal.tenant_id, body.visitor_id, body.email)
    return VisitorErased(rows_removed=await service.erase_visitor(db, principal, subject))


@router.get("/restrictions")
async def list_restrictions(principal: CanRead, conn: TenantConn) -> list[RestrictionOut]:
    return await service.list_restrictions(conn, principal.tenant_id)


@router.put("/restrictions")
async def add_restriction(
    principal: CanUpdate, conn: TenantConn, body: RestrictionIn
) -> RestrictionOut:
    """Restrict (no AI, analytics, lead scoring) or object (no analytics, lead scoring)."""
    return await service.set_restriction(conn, principal.tenant_id, body.visitor_id, body.kind)


@router.delete("/restrictions", status_code=204)
async def lift_restriction(
    principal: CanUpdate,
    conn: TenantConn,
    kind: RestrictionKind,
    visitor_id: Annotated[str | None, Query(max_length=200)] = None,
) -> None:
    await service.lift_restriction(conn, principal.tenant_id, visitor_id, kind)


@router.get("/requests")
async def list_requests(principal: CanExport, conn: TenantConn) -> list[RequestOut]:
    return await service.list_requests(conn, principal.tenant_id, overdue_only=False)


@router.get("/requests/overdue")
async def overdue_requests(principal: CanExport, conn: TenantConn) -> list[RequestOut]:
    """Open requests past their due date; each is also logged as a warning."""
    return await service.list_requests(conn, principal.tenant_id, overdue_only=True)


@router.post("/requests", status_code=201)
async def record_request(principal: CanExport, conn: TenantConn, body: RequestIn) -> RequestOut:
    return await service.record_request(
        conn,
        principal.tenant_id,
        subject_kind=body.subject_kind,
        subject_ref=body.subject_ref,
        right=body.right,
        received_at=body.received_at,
    )


@router.post("/requests/{request_id}/extend")
async def extend_request(
    principal: CanExport, conn: TenantConn, request_id: uuid.UUID, body: RequestExtension
) -> RequestOut:
    return await service.extend_request(conn, principal.tenant_id, request_id, body.notice)


@router.post("/requests/{request_id}/close")
async def close_request(
    principal: CanExport, conn: TenantConn, request_id: uuid.UUID, body: RequestClose
) -> RequestOut:
    return await service.close_request(conn, principal.tenant_id, request_id, body.status)


@router.get("/settings")
async def get_retention(principal: CanRead, conn: TenantConn) -> RetentionOut:
    months = await service.retention_months(conn, principal.tenant_id)
    return RetentionOut(conversation_retention_months=months)


@router.put("/settings")
async def set_retention(principal: CanUpdate, conn: TenantConn, body: RetentionIn) -> RetentionOut:
    """How long visitor conversations are kept (months); the daily job deletes older ones."""
    months = await service.set_retention_months(
        conn, principal.tenant_id, body.conversation_retention_months
    )
    return RetentionOut(conversation_retention_months=months)
