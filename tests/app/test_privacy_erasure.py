"""GDPR-17: erasure of a tenant, an account or a visitor — deactivated at once, every row,
object and vector purged by the job (resumable), the audit trail keeps only a pseudonym."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from psycopg.types.json import Jsonb

from app.core.db import Database
from app.core.security import SessionRefusedError, TokenIssuer, start_session
from app.core.settings import Settings
from app.knowledge.storage import ObjectStore, StorageSettings, tenant_prefix
from app.privacy import checks
from app.privacy.purge import Janitor, Pace, run
from app.privacy.service import pseudonym
from tests.app.conftest import AuthHeaders, TenantFixture
from tests.app.helpers import database_env, run_module
from tests.app.privacy_fixtures import (
    Seeded,
    object_keys,
    other,
    rows_mentioning,
    s3_env,
    s3_settings,
    seeded,
    store,
)

__all__ = ["other", "s3_settings", "seeded", "store"]  # fixtures
pytestmark = pytest.mark.anyio
ERASE = "/api/v1/privacy/erasure"


async def purge(db: Database, store: ObjectStore) -> dict[str, int]:
    return await run(Janitor(db, store, Pace(batch_size=50)), ["purge"])


def subject_values(seeded: Seeded) -> list[str]:
    """Every identifier of the tenant's people and visitors, for the leftover scan."""
    t = seeded.tenant
    return [
        str(t.id),
        *seeded.visitors,
        seeded.lead_email,
        *(str(u.id) for u in (t.owner, t.admin, t.member)),
        *(u.email for u in (t.owner, t.admin, t.member)),
    ]


@pytest.mark.claim("GDPR-17")
async def test_tenant_erasure_deactivates_at_once_and_purge_leaves_nothing(
    *,
    client: httpx.AsyncClient,
    db: Database,
    issuer: TokenIssuer,
    auth_headers: AuthHeaders,
    seeded: Seeded,
    other: Seeded,
    store: ObjectStore,
    s3_settings: StorageSettings,
) -> None:
    tenant = seeded.tenant
    owner = auth_headers(tenant.owner, tenant)
    assert object_keys(s3_settings, tenant_prefix(tenant.id)) == seeded.object_keys
    other_before = {v: await rows_mentioning(db, v) for v in subject_values(other)}

    response = await client.post(
        f"{ERASE}/tenant", headers=owner, json={"confirm_tenant_id": str(tenant.id)}
    )
    assert response.status_code == 202, response.text
    assert response.json()["subject_pseudonym"] == pseudonym("tenant", str(tenant.id))

    # Deactivated at once: API calls, new sessions and the widget's processing all refused.
    for user in (tenant.owner, tenant.admin, tenant.member):
        me = await client.get("/api/v1/users/me", headers=auth_headers(user, tenant))
        assert me.status_code == 401
        assert "deleted" in me.json()["detail"]
        with pytest.raises(SessionRefusedError):
            await start_session(db, user.id, tenant.id, issuer=issuer)
    async with db.unscoped() as conn:
        assert not await checks.tenant_is_active(conn, tenant.id)
        assert await checks.tenant_is_active(conn, other.tenant.id)
        for purpose in checks.Purpose:
            assert not await checks.processing_allowed(conn, tenant.id, seeded.visitors[0], purpose)

    assert (await purge(db, store))["erasures_purged"] == 4  # the tenant and its 3 sole users

    leftovers = {v: await rows_mentioning(db, v) for v in subject_values(seeded)}
    assert leftovers == {v: {} for v in subject_values(seeded)}
    assert object_keys(s3_settings, tenant_prefix(tenant.id)) == []
    # The other tenant lost nothing; its object is still there.
    assert {v: await rows_mentioning(db, v) for v in subject_values(other)} == other_before
    assert object_keys(s3_settings, tenant_prefix(other.tenant.id)) == other.object_keys
    # What remains is a pseudonymised record that the erasure happened.
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT detail FROM audit_events WHERE event = 'privacy.erasure_completed'"
            " AND tenant_id IS NULL AND detail->>'subject' = %s",
            [pseudonym("tenant", str(tenant.id))],
        )
        assert [r["detail"]["subject_kind"] for r in await cur.fetchall()] == ["tenant"]
        cur = await conn.execute(
            "SELECT count(*) AS n FROM privacy_erasures WHERE purged_at IS NULL"
        )
        assert (await cur.fetchone() or {})["n"] == 0


@pytest.mark.claim("GDPR-17")
async def test_tenant_erasure_for_another_tenant_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
    db: Database,
    auth_headers: AuthHeaders,
    seeded: Seeded,
    other: Seeded,
) -> None:
    tenant = seeded.tenant
    before = {v: await rows_mentioning(db, v) for v in subject_values(other)}
    response = await client.post(
        f"{ERASE}/tenant",
        headers=auth_headers(tenant.owner, tenant),
        json={"confirm_tenant_id": str(other.tenant.id)},
    )
    assert response.status_code == 409
    assert "nothing was changed" in response.json()["detail"]
    admin = await client.post(
        f"{ERASE}/tenant",
        headers=auth_headers(tenant.admin, tenant),
        json={"confirm_tenant_id": str(tenant.id)},
    )
    assert admin.status_code == 403  # only the Owner may erase
    async with db.owner() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM privacy_erasures")
        assert (await cur.fetchone() or {})["n"] == 0
    assert {v: await rows_mentioning(db, v) for v in subject_values(other)} == before
    ok = await client.get(
        "/api/v1/users/me", headers=auth_headers(other.tenant.owner, other.tenant)
    )
    assert ok.status_code == 200


@pytest.mark.claim("GDPR-17")
async def test_account_erasure_removes_the_person_and_pseudonymises_their_audit_trail(
    client: httpx.AsyncClient,
    db: Database,
    auth_headers: AuthHeaders,
    seeded: Seeded,
    store: ObjectStore,
) -> None:
    tenant = seeded.tenant
    sole_owner = await client.post(f"{ERASE}/account", headers=auth_headers(tenant.owner, tenant))
    assert sole_owner.status_code == 409  # the tenant would be left without an owner

    admin = tenant.admin
    async with db.owner() as conn:
        await conn.execute(
            "INSERT INTO audit_events (tenant_id, event, actor, outcome)"
            " VALUES (%s, 'role_change', %s, 'success')",
            [tenant.id, str(admin.id)],
        )
        await conn.execute(  # someone invited them earlier: their e-mail sits in the detail
            "INSERT INTO audit_events (tenant_id, event, actor, outcome, detail)"
            " VALUES (%s, 'invitation.created', %s, 'success', %s)",
            [tenant.id, str(tenant.owner.id), Jsonb({"email": admin.email.upper()})],
        )
    response = await client.post(f"{ERASE}/account", headers=auth_headers(admin, tenant))
    assert response.status_code == 202, response.text
    assert (
        await client.get("/api/v1/users/me", headers=auth_headers(admin, tenant))
    ).status_code == 401
    assert (await purge(db, store))["erasures_purged"] == 1

    assert await rows_mentioning(db, str(admin.id)) == {}
    assert await rows_mentioning(db, admin.email) == {}
    name = pseudonym("account", str(admin.id))
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM audit_events WHERE actor = %s AND event = 'role_change'",
            [name],
        )
        assert (await cur.fetchone() or {})["n"] == 1
        cur = await conn.execute(
            "SELECT detail FROM audit_events WHERE event = 'invitation.created'"
        )
        assert [r["detail"] for r in await cur.fetchall()] == [{"email": name}]
        cur = await conn.execute(
            "SELECT status FROM data_subject_requests WHERE subject_ref = %s", [name]
        )
        assert [r["status"] for r in await cur.fetchall()] == ["completed"]
    # The tenant and its other people carry on.
    me = await client.get("/api/v1/users/me", headers=auth_headers(tenant.owner, tenant))
    assert me.status_code == 200


@pytest.mark.claim("GDPR-17")
async def test_visitor_erasure_removes_conversations_and_lead_of_that_visitor_only(
    client: httpx.AsyncClient,
    db: Database,
    auth_headers: AuthHeaders,
    seeded: Seeded,
    other: Seeded,
) -> None:
    tenant = seeded.tenant
    gone, kept = seeded.visitors
    owner = auth_headers(tenant.owner, tenant)
    kept_before = await rows_mentioning(db, kept)
    # A visitor of another tenant cannot be named from this one.
    foreign = await client.post(f"{ERASE}/visitor", headers=owner, json={"email": other.lead_email})
    assert foreign.status_code == 404
    assert await rows_mentioning(db, other.lead_email) == {"leads": 1}

    # The visitor wrote in by e-mail; the request is tracked under that address.
    request = await client.post("/api/v1/privacy/requests", headers=owner, json={
        "subject_kind": "visitor", "subject_ref": seeded.lead_email, "right": "erasure",
    })  # fmt: skip
    assert request.status_code == 201
    response = await client.post(f"{ERASE}/visitor", headers=owner, json={"visitor_id": gone})
    assert response.status_code == 200, response.text
    removed = {k: v for k, v in response.json()["rows_removed"].items() if v}
    assert removed == {"chat_messages": 2, "leads": 1, "chat_sessions": 1}
    assert await rows_mentioning(db, gone) == {}
    assert await rows_mentioning(db, seeded.lead_email) == {}
    assert await rows_mentioning(db, kept) == kept_before
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT detail FROM audit_events WHERE tenant_id = %s"
            " AND event = 'privacy.visitor_erased'",
            [tenant.id],
        )
        assert [r["detail"]["subjects"] for r in await cur.fetchall()] == [
            [pseudonym("visitor", gone)]
        ]


@pytest.mark.claim("GDPR-17")
async def test_purge_killed_half_way_resumes_and_completes(
    db: Database,
    settings: Settings,
    seeded: Seeded,
    s3_settings: StorageSettings,
    store: ObjectStore,
) -> None:
    tenant = seeded.tenant
    async with db.owner() as conn:
        await conn.execute(
            "INSERT INTO chat_messages (tenant_id, session_id, visitor_id, role, content)"
            " SELECT tenant_id, id, visitor_id, 'user', 'bulk ' || n"
            " FROM chat_sessions, generate_series(1, 3000) AS n WHERE tenant_id = %s",
            [tenant.id],
        )
    total = await _messages(db, tenant)
    async with db.owner() as conn:
        await conn.execute(
            "INSERT INTO privacy_erasures (subject_kind, subject_id, subject_pseudonym)"
            " VALUES ('tenant', %s, %s)",
            [tenant.id, pseudonym("tenant", str(tenant.id))],
        )
    env = database_env(settings) | s3_env(s3_settings)
    args = ["--steps", "purge", "--batch-size", "100"]
    command = [sys.executable, "-m", "app.privacy.purge", *args, "--pause-ms", "30"]
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    left = total
    while left == total and time.monotonic() < deadline:
        time.sleep(0.05)
        left = await _messages(db, tenant)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    left = await _messages(db, tenant)
    assert 0 < left < total, "the job was not killed half-way through"
    async with db.unscoped() as conn:
        assert not await checks.tenant_is_active(conn, tenant.id)  # still off meanwhile

    done = run_module("app.privacy.purge", *args, env=env)
    assert done.returncode == 0, done.stderr
    assert "erasures_purged=4" in done.stdout
    assert await _messages(db, tenant) == 0
    assert await rows_mentioning(db, str(tenant.id)) == {}
    assert object_keys(s3_settings, tenant_prefix(tenant.id)) == []


async def _messages(db: Database, tenant: TenantFixture) -> int:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_messages WHERE tenant_id = %s", [tenant.id]
        )
        row = await cur.fetchone()
        return int(row["n"]) if row else 0
