"""HTTP of the widget: the script itself, its public API (config, CORS preflight) and the
admin endpoints for a site's embed tokens."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import FileResponse

from app.core.deps import Db, TenantConn, require_permission
from app.core.security import Principal
from app.widget import service
from app.widget.cors import WidgetRoute
from app.widget.schemas import TokenCreate, TokenIssued, TokenOut, WidgetConfig

SCRIPT = Path(__file__).with_name("static") / "widget.js"

admin_router = APIRouter(prefix="/api/v1/sites/{site_id}/widget-tokens", tags=["widget"])
public_router = APIRouter(prefix="/api/v1/widget", tags=["widget"], route_class=WidgetRoute)
script_router = APIRouter(prefix="/api/v1/widget", tags=["widget"])

CanRead = Annotated[Principal, require_permission("sites:read")]
CanWrite = Annotated[Principal, require_permission("sites:write")]
Origin = Annotated[str | None, Header()]


@script_router.get("/widget.js", include_in_schema=False)
async def script() -> FileResponse:
    """The embeddable script; cross-origin pages load it with a plain <script src>."""
    headers = {
        "Cache-Control": "public, max-age=300",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    return FileResponse(SCRIPT, media_type="text/javascript; charset=utf-8", headers=headers)


@public_router.options("/{token}/{action}", include_in_schema=False)
async def preflight(token: str, action: str, db: Db, origin: Origin = None) -> Response:
    """CORS preflight: allowed only for a live token called from one of its origins."""
    await service.authorize(db, token, origin)
    headers = {
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "content-type",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


@public_router.get("/{token}/config")
async def config(token: str, db: Db, origin: Origin = None) -> WidgetConfig:
    widget = await service.authorize(db, token, origin)
    return WidgetConfig(
        site_name=widget.site_name,
        language=widget.language,
        signed_visitors=widget.identity_secret is not None,
        consent_text=widget.consent_text,
    )


@admin_router.get("")
async def list_tokens(site_id: uuid.UUID, principal: CanRead, conn: TenantConn) -> list[TokenOut]:
    return await service.list_tokens(conn, principal.tenant_id, site_id)


@admin_router.post("", status_code=201)
async def create_token(
    site_id: uuid.UUID, body: TokenCreate, principal: CanWrite, conn: TenantConn
) -> TokenIssued:
    return await service.create_token(conn, principal, site_id, body.require_signed_visitor)


@admin_router.post("/{token_id}/rotate", status_code=201)
async def rotate_token(
    site_id: uuid.UUID, token_id: uuid.UUID, principal: CanWrite, conn: TenantConn
) -> TokenIssued:
    return await service.rotate_token(conn, principal, site_id, token_id)


@admin_router.delete("/{token_id}", status_code=204)
async def revoke_token(
    site_id: uuid.UUID, token_id: uuid.UUID, principal: CanWrite, conn: TenantConn
) -> Response:
    await service.revoke_token(conn, principal, site_id, token_id)
    return Response(status_code=204)
