"""SQL of data-subject rights: requests, erasure markers, restrictions, retention, and the
generic row operations that export and erasure run over the catalog's plan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from psycopg import sql

from app.core.db import Connection, TenantConnection
from app.core.tenancy import TenantId
from app.privacy.catalog import Update, Where

# --- rows of a plan (any table; identifiers come from the catalog, values are parameters) ---


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(name)


async def delete_batch(
    conn: Connection, table: str, where: Where, limit: int, returning: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Delete at most ``limit`` matching rows; return the ``returning`` columns of each."""
    ret = sql.SQL(", ").join(sql.Identifier(c) for c in returning) if returning else sql.SQL("1")
    query = sql.SQL(
        "DELETE FROM {t} AS t WHERE t.ctid = ANY(ARRAY("
        "SELECT t.ctid FROM {t} AS t WHERE {w} LIMIT %s)) RETURNING {ret}"
    ).format(t=_table(table), w=where.sql, ret=ret)
    cur = await conn.execute(query, [*where.params, limit])
    return await cur.fetchall()


async def delete_all(conn: Connection, table: str, where: Where) -> int:
    query = sql.SQL("DELETE FROM {t} AS t WHERE {w}").format(t=_table(table), w=where.sql)
    return (await conn.execute(query, where.params)).rowcount


async def apply_update(conn: Connection, update: Update, value: str | None) -> int:
    column = sql.Identifier(update.column)
    new: sql.Composable = sql.SQL("%s")
    params = [value]
    if update.pattern is not None:  # jsonb: replace the matches inside the document only
        new = sql.SQL("regexp_replace(t.{}::text, %s, %s, 'gi')::jsonb").format(column)
        params = [update.pattern, value]
    query = sql.SQL("UPDATE {t} AS t SET {c} = {new} WHERE {w}").format(
        t=_table(update.table), c=column, new=new, w=update.where.sql
    )
    cur = await conn.execute(query, [*params, *update.where.params])
    return cur.rowcount


async def count_rows(conn: Connection, table: str, where: Where) -> int:
    query = sql.SQL("SELECT count(*) AS n FROM {t} AS t WHERE {w}").format(
        t=_table(table), w=where.sql
    )
    row = await (await conn.execute(query, where.params)).fetchone()
    return int(row["n"]) if row else 0


async def stream_json_rows(
    conn: Connection, table: str, where: Where, omit: list[str]
) -> AsyncIterator[str]:
    """Each matching row as JSON text, through a server-side cursor (bounded memory)."""
    query = sql.SQL(
        "SELECT (to_jsonb(t) - %s::text[])::text AS row FROM {t} AS t WHERE {w}"
    ).format(t=_table(table), w=where.sql)
    async with conn.cursor(name=f"export_{uuid.uuid4().hex}") as cur:
        await cur.execute(query, [omit, *where.params])
        async for row in cur:
            yield str(row["row"])


async def stream_csv(
    conn: Connection, table: str, where: Where, columns: list[str]
) -> AsyncIterator[bytes]:
    """The matching rows as CSV with a header, straight from COPY (bounded memory)."""
    query = sql.SQL(
        "COPY (SELECT {cols} FROM {t} AS t WHERE {w}) TO STDOUT WITH (FORMAT csv, HEADER)"
    ).format(
        cols=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns),
        t=_table(table),
        w=where.sql,
    )
    async with conn.cursor().copy(query, where.params) as copy:
        async for data in copy:
            yield bytes(data)


async def visitor_ids_by_email(
    conn: TenantConnection, tenant_id: TenantId, tables: list[str], email: str
) -> list[str]:
    """Visitor ids recorded with this e-mail in the tenant's visitor tables (leads)."""
    found: set[str] = set()
    for table in tables:
        query = sql.SQL(
            "SELECT DISTINCT visitor_id FROM {t} WHERE tenant_id = %s"
            " AND lower(email) = lower(%s) AND visitor_id IS NOT NULL"
        ).format(t=_table(table))
        cur = await conn.execute(query, [tenant_id, email])
        found.update(str(row["visitor_id"]) for row in await cur.fetchall())
    return sorted(found)


async def visitor_emails(
    conn: TenantConnection, tenant_id: TenantId, tables: list[str], ids: list[str]
) -> tuple[str, ...]:
    """Every e-mail these visitors left in the tenant's visitor tables."""
    found: set[str] = set()
    for table in tables:
        query = sql.SQL(
            "SELECT DISTINCT email FROM {t} WHERE tenant_id = %s AND visitor_id = ANY(%s)"
            " AND email IS NOT NULL"
        ).format(t=_table(table))
        cur = await conn.execute(query, [tenant_id, ids])
        found.update(str(row["email"]) for row in await cur.fetchall())
    return tuple(sorted(found))


# --- erasure markers ---


async def insert_erasure(
    conn: Connection, kind: str, subject_id: uuid.UUID, pseudonym: str
) -> dict[str, Any] | None:
    """A new marker, or None if one is already pending for the subject."""
    cur = await conn.execute(
        "INSERT INTO privacy_erasures (subject_kind, subject_id, subject_pseudonym)"
        " VALUES (%s, %s, %s)"
        " ON CONFLICT (subject_kind, subject_id) WHERE subject_id IS NOT NULL DO NOTHING"
        " RETURNING id, subject_kind, subject_pseudonym, requested_at, due_at",
        [kind, subject_id, pseudonym],
    )
    return await cur.fetchone()


async def pending_erasure(
    conn: Connection, kind: str, subject_id: uuid.UUID
) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT id, subject_kind, subject_pseudonym, requested_at, due_at FROM privacy_erasures"
        " WHERE subject_kind = %s AND subject_id = %s",
        [kind, subject_id],
    )
    return await cur.fetchone()


async def pending_erasures(conn: Connection) -> list[dict[str, Any]]:
    """Every marker not yet purged, tenants first (purging one may add account markers)."""
    cur = await conn.execute(
        "SELECT id, subject_kind, subject_id, subject_pseudonym, requested_at, due_at"
        " FROM privacy_erasures WHERE subject_id IS NOT NULL"
        " ORDER BY subject_kind = 'tenant' DESC, requested_at"
    )
    return await cur.fetchall()


async def mark_purged(conn: Connection, erasure_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE privacy_erasures SET subject_id = NULL, purged_at = now() WHERE id = %s",
        [erasure_id],
    )


async def close_erasure_requests(conn: Connection, pseudonym: str) -> None:
    """Erasure requests of a purged subject (their reference already pseudonymised) are done."""
    await conn.execute(
        "UPDATE data_subject_requests SET status = 'completed', closed_at = now()"
        " WHERE subject_ref = %s AND right_invoked = 'erasure'"
        " AND status IN ('received', 'in_progress')",
        [pseudonym],
    )


async def overdue_erasures(conn: Connection) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, subject_kind, subject_pseudonym, requested_at, due_at FROM privacy_erasures"
        " WHERE subject_id IS NOT NULL AND due_at < now() ORDER BY due_at"
    )
    return await cur.fetchall()


async def sole_member_users(conn: Connection, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    """Members of this tenant who belong to no other tenant (owner role: sees all)."""
    cur = await conn.execute(
        "SELECT m.user_id FROM memberships m WHERE m.tenant_id = %s AND NOT EXISTS ("
        " SELECT 1 FROM memberships o WHERE o.user_id = m.user_id AND o.tenant_id <> %s)",
        [tenant_id, tenant_id],
    )
    return [row["user_id"] for row in await cur.fetchall()]


async def tenants_owned_alone(conn: Connection, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Tenants where this user is the only owner (owner role: across tenants)."""
    cur = await conn.execute(
        "SELECT m.tenant_id FROM memberships m WHERE m.user_id = %s AND m.role = 'owner'"
        " AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.tenant_id = m.tenant_id"
        " AND o.role = 'owner' AND o.user_id <> m.user_id)"
        " AND NOT EXISTS (SELECT 1 FROM privacy_erasures e WHERE e.subject_kind = 'tenant'"
        " AND e.subject_id = m.tenant_id)",
        [user_id],
    )
    return [row["tenant_id"] for row in await cur.fetchall()]


async def user_email(conn: Connection, user_id: uuid.UUID) -> str | None:
    row = await (await conn.execute("SELECT email FROM users WHERE id = %s", [user_id])).fetchone()
    return None if row is None else str(row["email"])


async def revoke_sessions(
    conn: Connection, *, tenant_id: uuid.UUID | None, user_id: uuid.UUID | None
) -> None:
    """Revoke refresh tokens of a tenant or of a user (owner role: across tenants)."""
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL"
        " AND (tenant_id = %s OR user_id = %s)",
        [tenant_id, user_id],
    )


# --- restriction and objection ---


async def add_restriction(
    conn: TenantConnection, tenant_id: TenantId, visitor_id: str | None, kind: str
) -> dict[str, Any]:
    await conn.execute(
        "INSERT INTO processing_restrictions (tenant_id, visitor_id, kind) VALUES (%s, %s, %s)"
        " ON CONFLICT (tenant_id, kind, coalesce(visitor_id, '')) DO NOTHING",
        [tenant_id, visitor_id, kind],
    )
    cur = await conn.execute(
        "SELECT visitor_id, kind, created_at FROM processing_restrictions"
        " WHERE tenant_id = %s AND kind = %s AND visitor_id IS NOT DISTINCT FROM %s",
        [tenant_id, kind, visitor_id],
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def remove_restriction(
    conn: TenantConnection, tenant_id: TenantId, visitor_id: str | None, kind: str
) -> int:
    cur = await conn.execute(
        "DELETE FROM processing_restrictions"
        " WHERE tenant_id = %s AND kind = %s AND visitor_id IS NOT DISTINCT FROM %s",
        [tenant_id, kind, visitor_id],
    )
    return cur.rowcount


async def list_restrictions(conn: TenantConnection, tenant_id: TenantId) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT visitor_id, kind, created_at FROM processing_restrictions WHERE tenant_id = %s"
        " ORDER BY created_at",
        [tenant_id],
    )
    return await cur.fetchall()


async def processing_blocked(
    conn: Connection, tenant_id: uuid.UUID, visitor_id: str | None, kinds: list[str]
) -> bool:
    """True if a flag of one of ``kinds`` covers the visitor (or the whole tenant), or the
    tenant is being erased."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM processing_restrictions WHERE tenant_id = %s"
        " AND (visitor_id IS NULL OR visitor_id = %s) AND kind = ANY(%s))"
        " OR EXISTS (SELECT 1 FROM privacy_erasures WHERE subject_kind = 'tenant'"
        " AND subject_id = %s) AS blocked",
        [tenant_id, visitor_id, kinds, tenant_id],
    )
    row = await cur.fetchone()
    return bool(row and row["blocked"])


# --- retention ---


async def get_retention_months(conn: TenantConnection, tenant_id: TenantId) -> int | None:
    cur = await conn.execute(
        "SELECT conversation_retention_months FROM privacy_settings WHERE tenant_id = %s",
        [tenant_id],
    )
    row = await cur.fetchone()
    return None if row is None else int(row["conversation_retention_months"])


async def set_retention_months(conn: TenantConnection, tenant_id: TenantId, months: int) -> None:
    await conn.execute(
        "INSERT INTO privacy_settings (tenant_id, conversation_retention_months) VALUES (%s, %s)"
        " ON CONFLICT (tenant_id) DO UPDATE"
        " SET conversation_retention_months = EXCLUDED.conversation_retention_months,"
        " updated_at = now()",
        [tenant_id, months],
    )


def older_than(column: str) -> sql.Composable:
    """Condition on (tenant id, cutoff): the tenant's rows whose ``column`` is before it."""
    return sql.SQL("t.tenant_id = %s AND t.{} < %s").format(sql.Identifier(column))


async def retention_cutoffs(conn: Connection, default_months: int) -> list[dict[str, Any]]:
    """Every tenant with the moment before which its conversations expire (owner role)."""
    cur = await conn.execute(
        "SELECT t.id AS tenant_id, now() - make_interval(months =>"
        " coalesce(s.conversation_retention_months, %s)) AS cutoff"
        " FROM tenants t LEFT JOIN privacy_settings s ON s.tenant_id = t.id ORDER BY t.id",
        [default_months],
    )
    return await cur.fetchall()


# --- data-subject requests ---

_REQUEST_COLUMNS = (
    "id, subject_kind, subject_ref, right_invoked, received_at, due_at, extended_at,"
    " extension_notice, status, closed_at"
)


async def insert_request(
    conn: Connection,
    tenant_id: TenantId,
    *,
    subject_kind: str,
    subject_ref: str,
    right: str,
    received_at: datetime | None,
    status: str,
) -> dict[str, Any]:
    query = sql.SQL(
        "INSERT INTO data_subject_requests"
        " (tenant_id, subject_kind, subject_ref, right_invoked, received_at, due_at, status,"
        " closed_at)"
        " SELECT %s, %s, %s, %s, r, r + interval '30 days', %s,"
        " CASE WHEN %s IN ('completed', 'refused') THEN now() END"
        " FROM (SELECT coalesce(%s::timestamptz, now()) AS r) AS received"
        " RETURNING {}"
    ).format(sql.SQL(_REQUEST_COLUMNS))
    cur = await conn.execute(
        query, [tenant_id, subject_kind, subject_ref, right, status, status, received_at]
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_requests(
    conn: TenantConnection, tenant_id: TenantId, *, overdue_only: bool
) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT {} FROM data_subject_requests WHERE tenant_id = %s"
        " AND (NOT %s OR (status IN ('received', 'in_progress') AND due_at < now()))"
        " ORDER BY due_at"
    ).format(sql.SQL(_REQUEST_COLUMNS))
    cur = await conn.execute(query, [tenant_id, overdue_only])
    return await cur.fetchall()


async def extend_request(
    conn: TenantConnection, tenant_id: TenantId, request_id: uuid.UUID, notice: str
) -> dict[str, Any] | None:
    """Extend an open, not yet extended request to 90 days from receipt; None if it is not."""
    query = sql.SQL(
        "UPDATE data_subject_requests SET due_at = received_at + interval '90 days',"
        " extended_at = now(), extension_notice = %s"
        " WHERE tenant_id = %s AND id = %s AND extended_at IS NULL"
        " AND status IN ('received', 'in_progress') RETURNING {}"
    ).format(sql.SQL(_REQUEST_COLUMNS))
    cur = await conn.execute(query, [notice, tenant_id, request_id])
    return await cur.fetchone()


async def close_request(
    conn: TenantConnection, tenant_id: TenantId, request_id: uuid.UUID, status: str
) -> dict[str, Any] | None:
    query = sql.SQL(
        "UPDATE data_subject_requests SET status = %s, closed_at = now()"
        " WHERE tenant_id = %s AND id = %s AND status IN ('received', 'in_progress')"
        " RETURNING {}"
    ).format(sql.SQL(_REQUEST_COLUMNS))
    cur = await conn.execute(query, [status, tenant_id, request_id])
    return await cur.fetchone()


async def overdue_requests_all(conn: Connection) -> list[dict[str, Any]]:
    """Open requests past their due date in every tenant (owner role, for the job's report)."""
    query = sql.SQL(
        "SELECT tenant_id, {} FROM data_subject_requests"
        " WHERE status IN ('received', 'in_progress') AND due_at < now() ORDER BY due_at"
    ).format(sql.SQL(_REQUEST_COLUMNS))
    cur = await conn.execute(query)
    return await cur.fetchall()
