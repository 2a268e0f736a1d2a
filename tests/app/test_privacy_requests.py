"""GDPR-DSR: every data-subject request is recorded with its received and due dates (30
days, extendable once to 90 with a recorded notice) and status; overdue ones are reported
by an endpoint, a log line per request, and the daily job."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.core.db import Database
from app.core.settings import Settings
from tests.app.conftest import AuthHeaders, TenantFixture
from tests.app.helpers import database_env, run_module

pytestmark = pytest.mark.anyio
REQUESTS = "/api/v1/privacy/requests"


def ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def record(
    client: httpx.AsyncClient, headers: dict[str, str], days_ago: int, right: str = "access"
) -> dict[str, Any]:
    response = await client.post(REQUESTS, headers=headers, json={
        "subject_kind": "visitor", "subject_ref": "someone@example.test", "right": right,
        "received_at": ago(days_ago),
    })  # fmt: skip
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.claim("GDPR-DSR")
async def test_requests_are_due_in_30_days_extendable_once_to_90_with_a_notice(
    client: httpx.AsyncClient,
    auth_headers: AuthHeaders,
    tenant: TenantFixture,
) -> None:
    admin = auth_headers(tenant.admin, tenant)
    fresh = await record(client, admin, days_ago=10)
    assert at(fresh["due_at"]) - at(fresh["received_at"]) == timedelta(days=30)
    assert (fresh["status"], fresh["extended_at"]) == ("received", None)

    no_notice = await client.post(
        f"{REQUESTS}/{fresh['id']}/extend", headers=admin, json={"notice": ""}
    )
    assert no_notice.status_code == 422
    extended = await client.post(
        f"{REQUESTS}/{fresh['id']}/extend",
        headers=admin,
        json={"notice": "Complex request; answer by 90 days."},
    )
    assert extended.status_code == 200, extended.text
    body = extended.json()
    assert at(body["due_at"]) - at(body["received_at"]) == timedelta(days=90)
    assert body["extension_notice"] == "Complex request; answer by 90 days."
    assert body["extended_at"] is not None
    twice = await client.post(
        f"{REQUESTS}/{fresh['id']}/extend", headers=admin, json={"notice": "again"}
    )
    assert twice.status_code == 409

    closed = await client.post(
        f"{REQUESTS}/{fresh['id']}/close", headers=admin, json={"status": "completed"}
    )
    assert (closed.json()["status"], closed.json()["closed_at"] is not None) == ("completed", True)
    assert (
        await client.post(
            f"{REQUESTS}/{fresh['id']}/close", headers=admin, json={"status": "refused"}
        )
    ).status_code == 409
    future = await client.post(REQUESTS, headers=admin, json={
        "subject_kind": "visitor", "subject_ref": "x", "right": "access", "received_at": ago(-2),
    })  # fmt: skip
    assert future.status_code == 422
    member = await client.get(REQUESTS, headers=auth_headers(tenant.member, tenant))
    assert member.status_code == 403


@pytest.mark.claim("GDPR-DSR")
async def test_overdue_requests_are_listed_and_logged_and_other_tenants_see_nothing(
    client: httpx.AsyncClient,
    auth_headers: AuthHeaders,
    tenant: TenantFixture,
    other_tenant: TenantFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = auth_headers(tenant.admin, tenant)
    late = await record(client, admin, days_ago=31, right="erasure")
    await record(client, admin, days_ago=29)
    extended = await record(client, admin, days_ago=45)
    await client.post(
        f"{REQUESTS}/{extended['id']}/extend",
        headers=admin,
        json={"notice": "Told the subject on day 20."},
    )

    with caplog.at_level(logging.WARNING, logger="cloop.privacy"):
        overdue = await client.get(f"{REQUESTS}/overdue", headers=admin)
    assert [r["id"] for r in overdue.json()] == [late["id"]]
    [line] = [r for r in caplog.records if r.getMessage() == "data-subject request overdue"]
    fields = line.__dict__["fields"]
    assert (fields["request_id"], fields["right"], fields["days_overdue"]) == (
        late["id"],
        "erasure",
        1,
    )

    other = auth_headers(other_tenant.admin, other_tenant)
    assert (await client.get(REQUESTS, headers=other)).json() == []
    assert (await client.get(f"{REQUESTS}/overdue", headers=other)).json() == []
    for action, body in (("extend", {"notice": "n"}), ("close", {"status": "completed"})):
        refused = await client.post(f"{REQUESTS}/{late['id']}/{action}", headers=other, json=body)
        assert refused.status_code == 409
    [still] = [
        r for r in (await client.get(REQUESTS, headers=admin)).json() if r["id"] == late["id"]
    ]
    assert still == late


@pytest.mark.claim("GDPR-DSR", "GDPR-17")
async def test_daily_job_logs_one_json_line_per_overdue_request_and_erasure(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    auth_headers: AuthHeaders,
    tenant: TenantFixture,
) -> None:
    late = await record(client, auth_headers(tenant.admin, tenant), days_ago=40)
    async with db.owner() as conn:  # an erasure the job failed to purge in time
        await conn.execute(
            "INSERT INTO privacy_erasures (subject_kind, subject_id, subject_pseudonym,"
            " requested_at, due_at) VALUES ('account', gen_random_uuid(), 'psn_x',"
            " now() - interval '31 days', now() - interval '1 day')"
        )
    env = database_env(settings)
    done = run_module("app.privacy.purge", "--steps", "overdue", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    overdue = [
        (x["event"], x.get("request_id") or x.get("subject"))
        for x in lines
        if x["level"] == "warning"
    ]
    assert overdue == [("data-subject request overdue", late["id"]), ("erasure overdue", "psn_x")]
    assert done.stdout.splitlines()[-1] == "overdue=2"
    bad = run_module("app.privacy.purge", "--batch-size", "0", env=env, timeout=60)
    assert bad.returncode == 2
    assert "--batch-size must be >= 1" in bad.stderr
    assert "Traceback" not in bad.stderr
