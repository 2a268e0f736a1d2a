"""HTTP of leads: the widget's lead form and the dashboard's list."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header

from app.chat.runtime import KbRuntime
from app.core.deps import ClientIp, Db, TenantConn, require_feature, require_permission
from app.core.security import Principal
from app.leads import service
from app.leads.schemas import LeadIn, LeadOut
from app.widget import service as widgets
from app.widget.cors import WidgetRoute

widget_router = APIRouter(prefix="/api/v1/widget", tags=["leads"], route_class=WidgetRoute)
router = APIRouter(prefix="/api/v1/sites/{site_id}/leads", tags=["leads"])

CanRead = Annotated[Principal, require_permission("leads:read")]


@widget_router.post("/{token}/leads", status_code=201)
async def capture(
    token: str,
    body: LeadIn,
    *,
    db: Db,
    runtime: KbRuntime,
    ip: ClientIp,
    origin: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    widget = await widgets.authorize(db, token, origin)
    widgets.check_visitor(widget, body.visitor_id, body.visitor_sig)
    await widgets.enforce_quotas(runtime, widget, ip)
    lead_id = await service.capture(db, widget, body)
    return {"id": str(lead_id)}


@router.get("", dependencies=[require_feature("leads")])
async def list_leads(site_id: uuid.UUID, principal: CanRead, conn: TenantConn) -> list[LeadOut]:
    return await service.list_leads(conn, principal.tenant_id, site_id)
