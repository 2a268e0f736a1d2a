"""The audit trail: one JSON line plus one row per auth event (LOG-1), site changes with who,
when, before and after (LOG-2), and purged after 12 months (LOG-3)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from app.audit.service import purge_expired, record_auth_event
from app.core.db import Database
from app.core.logging import JsonFormatter
from app.core.security import start_session
from app.core.settings import Settings
from tests.app.conftest import CLIENT_IP, AuthHeaders, TenantFixture
from tests.app.helpers import database_env, run_module

pytestmark = pytest.mark.anyio


@pytest.fixture
def audit_lines() -> Iterator[io.StringIO]:
    """What the audit logger writes, rendered by the production JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cloop.audit")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def _events(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["event"] == "auth event"]


async def _rows(db: Database) -> list[dict[str, Any]]:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT tenant_id, event, actor, ip, outcome, detail FROM audit_events ORDER BY id"
        )
        return await cur.fetchall()


@pytest.mark.claim("LOG-1")
async def test_each_auth_event_is_one_json_line_and_one_row(
    client: httpx.AsyncClient,
    db: Database,
    tenant: TenantFixture,
    auth_headers: AuthHeaders,
    audit_lines: io.StringIO,
) -> None:
    # Sign-in success and failure are recorded by the sign-in flows through this same call.
    await record_auth_event(
        db,
        event="sign_in",
        actor=str(tenant.member.id),
        tenant_id=tenant.id,
        ip=CLIENT_IP,
        outcome="success",
        detail={"provider": "google"},
    )
    await record_auth_event(
        db,
        event="sign_in",
        actor="someone@example.test",
        tenant_id=None,
        ip=CLIENT_IP,
        outcome="failure",
        detail={"reason": "bad state"},
    )
    pair = await start_session(db, tenant.member.id, tenant.id)
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token}
    )
    await client.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
    await client.post(
        "/api/v1/auth/signout", json={"refresh_token": refreshed.json()["refresh_token"]}
    )
    owner = auth_headers(tenant.owner, tenant)
    await client.put(
        f"/api/v1/tenant/members/{tenant.member.id}/role", json={"role": "admin"}, headers=owner
    )
    await client.post(
        "/api/v1/tenant/invitations", json={"email": "new@example.test"}, headers=owner
    )

    expected = [
        ("sign_in", "success"),
        ("sign_in", "failure"),
        ("token.refresh", "success"),
        ("token.refresh", "failure"),
        ("sign_out", "success"),
        ("role_change", "success"),
        ("member_invited", "success"),
    ]
    lines, rows = _events(audit_lines), await _rows(db)
    assert [(line["auth_event"], line["outcome"]) for line in lines] == expected
    assert [(row["event"], row["outcome"]) for row in rows] == expected
    for line, row in zip(lines, rows, strict=True):
        assert {"actor", "tenant_id", "ip", "outcome", "ts"} <= line.keys()
        assert line["ip"] == row["ip"] == CLIENT_IP
        assert line["tenant_id"] == (str(row["tenant_id"]) if row["tenant_id"] else None)
        assert line["actor"] == row["actor"]
    role_change = lines[5]
    assert role_change["actor"] == str(tenant.owner.id)
    assert role_change["tenant_id"] == str(tenant.id)
    assert role_change["detail"] == {
        "user_id": str(tenant.member.id),
        "from": "member",
        "to": "admin",
    }
    assert lines[3]["detail"]["reason"] == "reuse detected: session family revoked"
    # Signing out with a token of a revoked family still ends (keeps ended) that session.
    assert lines[4]["actor"] == str(tenant.member.id)


@pytest.mark.claim("LOG-1")
async def test_the_app_can_only_append_to_the_trail(db: Database, tenant: TenantFixture) -> None:
    await record_auth_event(
        db, event="sign_in", actor="x", tenant_id=tenant.id, ip=None, outcome="success"
    )
    for statement in ("UPDATE audit_events SET outcome = 'failure'", "DELETE FROM audit_events"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with db.tenant(tenant.id) as conn:
                await conn.execute(statement)
    assert len(await _rows(db)) == 1


@pytest.mark.claim("LOG-2")
async def test_every_site_change_records_who_when_before_after(
    client: httpx.AsyncClient, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    admin = auth_headers(tenant.admin, tenant)
    started = datetime.now(UTC)
    created = await client.post(
        "/api/v1/sites",
        json={"name": "Shop", "allowed_origins": ["https://Shop.Example.com/"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    site = created.json()
    assert site["allowed_origins"] == ["https://shop.example.com"]
    url = f"/api/v1/sites/{site['id']}"
    patched = await client.patch(
        url, json={"persona": "Warm", "phase": "launch week"}, headers=admin
    )
    assert patched.status_code == 200
    assert (await client.patch(url, json={"persona": "Warm"}, headers=admin)).status_code == 200
    assert (await client.delete(url, headers=admin)).status_code == 204

    history = await client.get(f"/api/v1/audit/sites/{site['id']}/changes", headers=admin)
    assert history.status_code == 200
    deleted, updated, made = history.json()  # newest first; the no-op PATCH recorded nothing
    assert made["before"] is None
    assert made["after"]["name"] == "Shop"
    assert updated["before"]["persona"] == ""
    assert updated["after"]["persona"] == "Warm"
    assert updated["after"]["phase"] == "launch week"
    assert deleted["before"] == updated["after"]
    assert deleted["after"] is None
    for change in (made, updated, deleted):
        assert change["actor"] == str(tenant.admin.id)
        assert datetime.fromisoformat(change["changed_at"]) >= started - timedelta(seconds=5)


@pytest.fixture
async def aged_rows(db: Database, tenant: TenantFixture) -> None:
    """Audit rows 13 and 11 months old, as the clock of a long-running system would leave."""
    async with db.owner() as conn:
        for months in (13, 11):
            when = datetime.now(UTC) - timedelta(days=months * 30.5)
            await conn.execute(
                "INSERT INTO audit_events (tenant_id, occurred_at, event, outcome)"
                " VALUES (%s, %s, %s, 'success')",
                [tenant.id, when, f"{months} months ago"],
            )
            await conn.execute(
                "INSERT INTO site_changes (tenant_id, site_id, changed_at, actor)"
                " VALUES (%s, gen_random_uuid(), %s, %s)",
                [tenant.id, when, f"{months} months ago"],
            )


async def _kept(db: Database) -> tuple[list[str], list[str]]:
    async with db.owner() as conn:
        events = await (await conn.execute("SELECT event FROM audit_events")).fetchall()
        changes = await (await conn.execute("SELECT actor FROM site_changes")).fetchall()
    return [r["event"] for r in events], [r["actor"] for r in changes]


@pytest.mark.claim("LOG-3")
@pytest.mark.usefixtures("aged_rows")
async def test_purge_removes_rows_older_than_twelve_months(db: Database) -> None:
    assert await purge_expired(db, 365) == {"audit_events": 1, "site_changes": 1}
    assert await _kept(db) == (["11 months ago"], ["11 months ago"])


@pytest.mark.claim("LOG-3")
@pytest.mark.usefixtures("aged_rows")
async def test_purge_command_for_the_timer(db: Database, settings: Settings) -> None:
    env = database_env(settings)
    done = run_module("app.jobs", "purge-audit", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "audit_events=1 site_changes=1"
    assert await _kept(db) == (["11 months ago"], ["11 months ago"])
    env["CLOOP_OWNER_DATABASE_URL"] = "postgresql://nobody@/nowhere?host=/nonexistent"
    failed = run_module("app.jobs", "purge-audit", env=env)
    assert failed.returncode == 1
    assert failed.stderr.startswith("purge-audit failed: ")
    assert "Traceback" not in failed.stderr
