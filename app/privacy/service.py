"""Rules of the data-subject rights (GDPR Art. 15-21).

Export and erasure walk the catalog (``app.privacy.catalog``) of the live schema, so every
table that holds tenant, visitor or account data is covered without a list to maintain.
The checks other packages call live in ``app.privacy.checks``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from app.audit.service import record_member_action
from app.core.db import Connection, Database, TenantConnection
from app.core.logging import log_event
from app.core.problems import ApiError
from app.core.security import Principal
from app.core.tenancy import TenantId
from app.privacy import repository
from app.privacy.catalog import Catalog, Plan, Subject, SubjectKind, load_catalog
from app.privacy.schemas import ErasureOut, RequestOut, RestrictionKind, RestrictionOut, Right

log = logging.getLogger("cloop.privacy")

EXPORT_FORMAT = "cloop-export"
EXPORT_VERSION = 1
EXPORT_SCHEMA = Path(__file__).with_name("export-schema.json")
DEFAULT_RETENTION_MONTHS = 12
_CHUNK = 64 * 1024
OPEN = "received"
DONE = "completed"


def pseudonym(kind: str, subject_id: str) -> str:
    """A stable stand-in for an erased subject: unlinkable once the id itself is gone."""
    return "psn_" + hashlib.sha256(f"{kind}:{subject_id}".encode()).hexdigest()[:32]


# --- export (GDPR-15, GDPR-20) ---


async def resolve_visitor(
    conn: TenantConnection, tenant_id: TenantId, visitor_id: str | None, email: str | None
) -> Subject:
    """The visitor subject named by id or by the e-mail they left (in a lead), with every
    e-mail they left, so that requests naming them by e-mail are found too."""
    catalog = await load_catalog(conn)
    tables = sorted(n for n in catalog.visitor_tables() if catalog.tables[n].has("email"))
    if visitor_id:
        ids = [visitor_id]
    else:
        ids = await repository.visitor_ids_by_email(conn, tenant_id, tables, email or "")
    if not ids or not await _visitor_exists(conn, catalog, tenant_id, ids):
        raise ApiError(404, "No data of this visitor is held in this tenant.")
    emails = await repository.visitor_emails(conn, tenant_id, tables, ids)
    return Subject(SubjectKind.VISITOR, tuple(ids), tenant_id=str(tenant_id), aliases=emails)


async def _visitor_exists(
    conn: Connection, catalog: Catalog, tenant_id: TenantId, ids: list[str]
) -> bool:
    """Rows with these visitor ids exist in the tenant (read under its row-level security)."""
    subject = Subject(SubjectKind.VISITOR, tuple(ids), tenant_id=str(tenant_id))
    direct = catalog.visitor_tables()
    for table, where in catalog.plan(subject).deletions.items():
        if table in direct and await repository.count_rows(conn, table, where):
            return True
    return False


def tenant_subject(tenant_id: TenantId) -> Subject:
    return Subject(SubjectKind.TENANT, (str(tenant_id),))


async def account_subject(conn: Connection, user_id: uuid.UUID) -> Subject:
    email = await repository.user_email(conn, user_id)
    if email is None:
        raise ApiError(404, "This account no longer exists.")
    return Subject(SubjectKind.ACCOUNT, (str(user_id),), email=email)


async def export_json(db: Database, subject: Subject) -> AsyncIterator[bytes]:
    """The subject's rows of every table, as one JSON document (export-schema.json),
    produced table by table, row by row, in chunks of about 64 KiB.

    Runs as the owner: some tables are closed to the app role (sign-in flows), and the plan
    bounds every condition to the subject, whose tenant came from the caller's token."""
    buffer = _Chunker()
    async with db.owner() as conn:
        catalog = await load_catalog(conn)
        head = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "generated_at": datetime.now(UTC).isoformat(),
            "subject": {"kind": subject.kind.value, "ids": list(subject.ids)},
        }
        yield json.dumps(head)[:-1].encode() + b', "tables": ['
        for index, (name, where) in enumerate(catalog.plan(subject).selections().items()):
            table = catalog.tables[name]
            omitted = table.omitted_columns()
            columns = [c for c in table.columns if c not in omitted]
            start = {"name": name, "columns": columns, "omitted_columns": omitted}
            buffer.add(("," if index else "") + json.dumps(start)[:-1] + ', "rows": [')
            count = 0
            async for row in repository.stream_json_rows(conn, name, where, list(omitted)):
                buffer.add(("," if count else "") + row)
                count += 1
                if buffer.full():
                    yield buffer.take()
            buffer.add(f'], "row_count": {count}}}')
        buffer.add("]}")
        yield buffer.take()


async def export_tables(db: Database, subject: Subject) -> list[str]:
    """Names of the tables an export of this subject contains (for CSV links)."""
    async with db.owner() as conn:
        catalog = await load_catalog(conn)
        return list(catalog.plan(subject).selections())


async def export_csv(db: Database, subject: Subject, table: str) -> AsyncIterator[bytes]:
    """One table of the export as CSV (JSON-valued columns as JSON text)."""
    async with db.owner() as conn:
        catalog = await load_catalog(conn)
        selections = catalog.plan(subject).selections()
        omitted = catalog.tables[table].omitted_columns()
        columns = [c for c in catalog.tables[table].columns if c not in omitted]
        async for data in repository.stream_csv(conn, table, selections[table], columns):
            yield data


@cache
def export_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(EXPORT_SCHEMA.read_text())
    return schema


class _Chunker:
    """Collects small strings into chunks of about ``_CHUNK`` bytes."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def add(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)

    def full(self) -> bool:
        return self._size >= _CHUNK

    def take(self) -> bytes:
        data = "".join(self._parts).encode()
        self._parts, self._size = [], 0
        return data


# --- erasure (GDPR-17) ---


async def erase_tenant(
    db: Database, principal: Principal, confirm_tenant_id: uuid.UUID
) -> ErasureOut:
    """Deactivate the caller's tenant now; the purge job removes everything within 30 days."""
    if confirm_tenant_id != principal.tenant_id:
        raise ApiError(
            409,
            "confirm_tenant_id must be the id of the tenant you are signed in to; nothing"
            " was changed.",
        )
    async with db.owner() as conn:
        marker = await _mark(conn, SubjectKind.TENANT, principal.tenant_id)
        await repository.revoke_sessions(conn, tenant_id=principal.tenant_id, user_id=None)
        await _audit_request(conn, principal, marker)
    log_event(log, "erasure requested", subject_kind="tenant", subject=marker.subject_pseudonym)
    return marker


async def erase_account(db: Database, principal: Principal) -> ErasureOut:
    """Deactivate the caller's account now (every tenant); purged within 30 days."""
    async with db.owner() as conn:
        alone = await repository.tenants_owned_alone(conn, principal.user_id)
        if alone:
            raise ApiError(
                409,
                "You are the only owner of a tenant: hand ownership to someone else or delete"
                " the tenant first; nothing was changed.",
                tenants=[str(t) for t in alone],
            )
        marker = await _mark(conn, SubjectKind.ACCOUNT, principal.user_id)
        await repository.revoke_sessions(conn, tenant_id=None, user_id=principal.user_id)
        await _audit_request(conn, principal, marker)
        await repository.insert_request(
            conn, principal.tenant_id, subject_kind="account", subject_ref=str(principal.user_id),
            right=Right.ERASURE, received_at=None, status="in_progress",
        )  # fmt: skip
    log_event(log, "erasure requested", subject_kind="account", subject=marker.subject_pseudonym)
    return marker


async def _audit_request(conn: Connection, principal: Principal, marker: ErasureOut) -> None:
    """Who asked for an erasure; purged with the tenant, pseudonymised with the account."""
    detail = {"subject_kind": marker.subject_kind, "due_at": marker.due_at.isoformat()}
    await record_member_action(conn, principal, "privacy.erasure_requested", detail)


async def _mark(conn: Connection, kind: SubjectKind, subject_id: uuid.UUID) -> ErasureOut:
    name = pseudonym(kind, str(subject_id))
    row = await repository.insert_erasure(conn, kind, subject_id, name)
    row = row or await repository.pending_erasure(conn, kind, subject_id)
    assert row is not None
    return ErasureOut.model_validate(row)


async def erase_visitor(db: Database, principal: Principal, subject: Subject) -> dict[str, int]:
    """Remove the visitor's conversations, lead and every other row about them at once; the
    audit trail keeps one pseudonymised record. The plan is bounded to the visitor's tenant;
    it runs as the owner because pseudonymising the audit trail is beyond the app role."""
    names = [pseudonym("visitor", v) for v in subject.ids]
    async with db.owner() as conn:
        plan = (await load_catalog(conn)).plan(subject)
        removed = await _run_plan(conn, plan, names[0])
        await _record_answered(conn, principal.tenant_id, ("visitor", names[0]), Right.ERASURE)
        detail = {"subjects": names, "rows_removed": sum(removed.values())}
        await record_member_action(conn, principal, "privacy.visitor_erased", detail)
    log_event(log, "visitor erased", tenant_id=str(principal.tenant_id), subjects=names)
    return removed


async def _run_plan(conn: Connection, plan: Plan, name: str) -> dict[str, int]:
    """Clear references, then delete children first, in one transaction (a visitor's rows)."""
    for update in plan.updates:
        await repository.apply_update(conn, update, name if update.pseudonymise else None)
    return {table: await repository.delete_all(conn, table, where)
            for table, where in plan.deletions.items()}  # fmt: skip


# --- restriction (GDPR-18) and objection (GDPR-21) ---


async def set_restriction(
    conn: TenantConnection, tenant_id: TenantId, visitor_id: str | None, kind: RestrictionKind
) -> RestrictionOut:
    row = await repository.add_restriction(conn, tenant_id, visitor_id, kind)
    subject = ("visitor", visitor_id) if visitor_id else ("tenant", str(tenant_id))
    await _record_answered(conn, tenant_id, subject, _RIGHT_OF[kind])
    return RestrictionOut.model_validate(row)


async def lift_restriction(
    conn: TenantConnection, tenant_id: TenantId, visitor_id: str | None, kind: RestrictionKind
) -> None:
    if not await repository.remove_restriction(conn, tenant_id, visitor_id, kind):
        raise ApiError(404, f"No {kind} is in place for this subject.")


async def list_restrictions(conn: TenantConnection, tenant_id: TenantId) -> list[RestrictionOut]:
    rows = await repository.list_restrictions(conn, tenant_id)
    return [RestrictionOut.model_validate(row) for row in rows]


_RIGHT_OF = {
    RestrictionKind.RESTRICTION: Right.RESTRICTION,
    RestrictionKind.OBJECTION: Right.OBJECTION,
}


async def _record_answered(
    conn: Connection, tenant_id: TenantId, subject: tuple[str, str], right: Right
) -> None:
    """A request the API answered at once, recorded as completed (GDPR-DSR)."""
    kind, ref = subject
    await repository.insert_request(
        conn, tenant_id, subject_kind=kind, subject_ref=ref, right=right, received_at=None,
        status=DONE,
    )  # fmt: skip


async def record_export(conn: TenantConnection, tenant_id: TenantId, subject: Subject) -> None:
    """An export answers an access request at once."""
    await _record_answered(conn, tenant_id, (subject.kind, subject.ids[0]), Right.ACCESS)


# --- retention ---


async def retention_months(conn: TenantConnection, tenant_id: TenantId) -> int:
    months = await repository.get_retention_months(conn, tenant_id)
    return months or DEFAULT_RETENTION_MONTHS


async def set_retention_months(conn: TenantConnection, tenant_id: TenantId, months: int) -> int:
    await repository.set_retention_months(conn, tenant_id, months)
    return months


# --- request tracking (GDPR-DSR) ---


async def record_request(
    conn: TenantConnection,
    tenant_id: TenantId,
    *,
    subject_kind: str,
    subject_ref: str,
    right: Right,
    received_at: datetime | None,
) -> RequestOut:
    """A request received by mail or phone: due 30 days after it was received."""
    if received_at and received_at > datetime.now(UTC):
        raise ApiError(422, "received_at lies in the future.")
    row = await repository.insert_request(
        conn,
        tenant_id,
        subject_kind=subject_kind,
        subject_ref=subject_ref,
        right=right,
        received_at=received_at,
        status=OPEN,
    )
    return RequestOut.model_validate(row)


async def list_requests(
    conn: TenantConnection, tenant_id: TenantId, *, overdue_only: bool
) -> list[RequestOut]:
    rows = await repository.list_requests(conn, tenant_id, overdue_only=overdue_only)
    if overdue_only:
        for row in rows:
            log_overdue(row, tenant_id)
    return [RequestOut.model_validate(row) for row in rows]


async def extend_request(
    conn: TenantConnection, tenant_id: TenantId, request_id: uuid.UUID, notice: str
) -> RequestOut:
    """Extend to 90 days from receipt, once, with the notice sent to the data subject."""
    row = await repository.extend_request(conn, tenant_id, request_id, notice)
    if row is None:
        raise ApiError(
            409,
            "Only an open request that was not extended yet can be extended (once, to 90"
            " days from receipt).",
        )
    return RequestOut.model_validate(row)


async def close_request(
    conn: TenantConnection, tenant_id: TenantId, request_id: uuid.UUID, status: str
) -> RequestOut:
    row = await repository.close_request(conn, tenant_id, request_id, status)
    if row is None:
        raise ApiError(409, "No open request with this id in this tenant.")
    return RequestOut.model_validate(row)


def log_overdue(row: dict[str, Any], tenant_id: uuid.UUID) -> None:
    log_event(
        log,
        "data-subject request overdue",
        logging.WARNING,
        tenant_id=str(tenant_id),
        request_id=str(row["id"]),
        right=row["right_invoked"],
        received_at=row["received_at"].isoformat(),
        due_at=row["due_at"].isoformat(),
        days_overdue=(datetime.now(UTC) - row["due_at"]).days,
    )
