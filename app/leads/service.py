"""Leads: an e-mail address stored with the consent text the visitor agreed to. Leads are
kept in Postgres only; nothing here reaches the prompt builder (AI-2)."""

from __future__ import annotations

import uuid

from app.core.db import Database, TenantConnection
from app.core.problems import ApiError
from app.core.tenancy import TenantId
from app.leads import repository
from app.leads.schemas import LeadIn, LeadOut
from app.sites import repository as sites
from app.widget.service import Widget


async def capture(db: Database, widget: Widget, body: LeadIn) -> uuid.UUID:
    async with db.tenant(widget.tenant_id) as conn:
        return await repository.insert_lead(
            conn, widget.tenant_id, widget.site_id,
            values=body.model_dump(), consent_text=widget.consent_text,
        )  # fmt: skip


async def list_leads(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID
) -> list[LeadOut]:
    if await sites.get_site(conn, tenant_id, site_id) is None:
        raise ApiError(404, "No such site in this tenant.")
    return [
        LeadOut.model_validate(r) for r in await repository.list_leads(conn, tenant_id, site_id)
    ]
