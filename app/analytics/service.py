"""A site's analytics over the last `days` days."""

from __future__ import annotations

import uuid

from app.analytics import repository
from app.analytics.schemas import Analytics, DayCount, QuestionCount, Unanswered
from app.core.db import TenantConnection
from app.core.problems import ApiError
from app.core.tenancy import TenantId
from app.sites import repository as sites

TOP = 20


async def site_analytics(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, days: int
) -> Analytics:
    if await sites.get_site(conn, tenant_id, site_id) is None:
        raise ApiError(404, "No such site in this tenant.")
    leads = [
        DayCount.model_validate(r)
        for r in await repository.leads_per_day(conn, tenant_id, site_id, days)
    ]
    return Analytics(
        days=days,
        conversations_per_day=[
            DayCount.model_validate(r)
            for r in await repository.conversations_per_day(conn, tenant_id, site_id, days)
        ],
        top_questions=[
            QuestionCount.model_validate(r)
            for r in await repository.top_questions(conn, tenant_id, site_id, days, TOP)
        ],
        unanswered=[
            Unanswered.model_validate(r)
            for r in await repository.unanswered(conn, tenant_id, site_id, days, TOP)
        ],
        leads_per_day=leads,
        leads_total=sum(d.count for d in leads),
    )
