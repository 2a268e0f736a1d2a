"""The checks other packages call: may this tenant or user act, may this data be processed.

Kept apart from the service so that the session code and the chat path can import them
without pulling in the rest of the privacy package.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from psycopg import sql

from app.core.db import Connection
from app.core.tenancy import TenantId
from app.privacy import repository
from app.privacy.schemas import RestrictionKind

RESTRICTION, OBJECTION = RestrictionKind.RESTRICTION.value, RestrictionKind.OBJECTION.value


class Purpose(StrEnum):
    """Why personal data would be processed; decides which flags stop it."""

    AI_ANSWER = "ai_answer"  # answering the visitor (contract): stopped by restriction
    ANALYTICS = "analytics"  # legitimate interest: stopped by restriction or objection
    LEAD_SCORING = "lead_scoring"  # legitimate interest: stopped by restriction or objection


_BLOCKED_BY: dict[Purpose, list[str]] = {
    Purpose.AI_ANSWER: [RESTRICTION],
    Purpose.ANALYTICS: [RESTRICTION, OBJECTION],
    Purpose.LEAD_SCORING: [RESTRICTION, OBJECTION],
}


async def processing_allowed(
    conn: Connection, tenant_id: TenantId, visitor_id: str | None, purpose: Purpose
) -> bool:
    """False if a restriction (GDPR-18), an objection (GDPR-21, legitimate-interest purposes
    only) or a pending erasure of the tenant covers this visitor or the whole tenant."""
    return not await repository.processing_blocked(
        conn, tenant_id, visitor_id, _BLOCKED_BY[purpose]
    )


# 'tenant' or 'account' while that subject's erasure is pending, else NULL: a scalar SQL
# expression over the parameters %(tenant_id)s and %(user_id)s, so that the request path can
# evaluate it in the statement that checks the membership (no round trip of its own).
ERASURE_PENDING = sql.SQL(
    "(SELECT subject_kind FROM privacy_erasures"
    " WHERE (subject_kind = 'tenant' AND subject_id = %(tenant_id)s)"
    " OR (subject_kind = 'account' AND subject_id = %(user_id)s)"
    " ORDER BY subject_kind DESC LIMIT 1)"
)
_ERASURE_PENDING_QUERY = sql.SQL("SELECT {} AS kind").format(ERASURE_PENDING)


async def _erasure_pending(
    conn: Connection, tenant_id: TenantId, user_id: uuid.UUID | None
) -> str | None:
    cur = await conn.execute(_ERASURE_PENDING_QUERY, {"tenant_id": tenant_id, "user_id": user_id})
    row = await cur.fetchone()
    return None if row is None else row["kind"]


async def tenant_is_active(conn: Connection, tenant_id: TenantId) -> bool:
    """False from the moment the tenant's erasure was asked for: no sign-in, widget off."""
    return await _erasure_pending(conn, tenant_id, None) is None


def refusal_message(erasure_pending: str | None) -> str | None:
    """The refusal of a session given the value of ``ERASURE_PENDING``, or None."""
    if erasure_pending is None:
        return None
    return f"This {erasure_pending} has been deleted and is awaiting its purge."


async def access_refusal(conn: Connection, tenant_id: TenantId, user_id: uuid.UUID) -> str | None:
    """Why a session of this user in this tenant must be refused (erasure pending), or None."""
    return refusal_message(await _erasure_pending(conn, tenant_id, user_id))
