"""Embed tokens (AUTHZ-4), the widget's CORS, signed visitors, rate limits per IP across
workers (RATE-1), per token and per tenant (RATE-2), leads and analytics."""

from __future__ import annotations

import asyncio
import gzip
import random
import re
import time

import httpx
import pytest
from fastapi import FastAPI

from app.chat.runtime import Runtime
from app.core.db import Database
from app.core.main import create_app
from app.core.security import KeySet
from app.core.settings import Settings
from app.ratelimit.service import Limiter, Tier
from app.standins.llm import LlmStandin
from app.widget.service import sign_visitor
from tests.app.conftest import AuthHeaders, TenantFixture
from tests.app.kb_fixtures import (
    GENEROUS,
    ORIGIN,
    WidgetSite,
    chat,
    embedder,
    ingest,
    llm,
    make_widget_site,
    runtime,
    s3_settings,
    widget_site,
)

__all__ = ["embedder", "llm", "runtime", "s3_settings", "widget_site"]
pytestmark = pytest.mark.anyio
NOW = 1_900_000_000.25  # a frozen clock, a quarter second into its second


def frozen(runtime: Runtime, **limits: int) -> list[float]:
    """Freeze the limiter's clock (tests move it by hand) and set the given limits."""
    clock = [NOW]
    runtime.limiter.clock = lambda: clock[0]
    runtime.limits = GENEROUS.model_copy(update=limits)
    return clock


async def config(client: httpx.AsyncClient, token: str, origin: str = ORIGIN) -> httpx.Response:
    return await client.get(f"/api/v1/widget/{token}/config", headers={"Origin": origin})


@pytest.mark.claim("AUTHZ-4")
async def test_token_works_only_from_its_sites_allowed_origins(
    client: httpx.AsyncClient, widget_site: WidgetSite, runtime: Runtime
) -> None:
    ok = await config(client, widget_site.token)
    assert ok.status_code == 200
    assert ok.json()["site_name"] == "Shop"
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    for origin in ("https://evil.example", "http://shop.example", "https://shop.example.evil.io"):
        refused = await config(client, widget_site.token, origin)
        assert refused.status_code == 403, origin
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await chat(client, widget_site.token, "hi", origin=origin)).status == 403
    no_origin = await client.get(f"/api/v1/widget/{widget_site.token}/config")
    assert no_origin.status_code == 403
    for token in ("cw_unknown-token", "not-a-token", widget_site.token + "x"):
        assert (await config(client, token)).status_code == 401


@pytest.mark.claim("AUTHZ-4")
async def test_preflight_is_answered_only_for_allowed_origins(
    client: httpx.AsyncClient, widget_site: WidgetSite
) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }

    path = f"/api/v1/widget/{widget_site.token}/chat"
    ok = await client.options(path, headers=preflight(ORIGIN))
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in ok.headers["access-control-allow-methods"]
    refused = await client.options(path, headers=preflight("https://evil.example"))
    assert refused.status_code == 403


@pytest.mark.claim("AUTHZ-4", "LOG-2")
async def test_rotation_and_revocation_take_effect_at_once(
    client: httpx.AsyncClient, widget_site: WidgetSite, db: Database
) -> None:
    base = f"{widget_site.base}/widget-tokens"
    rotated = await client.post(f"{base}/{widget_site.token_id}/rotate", headers=widget_site.admin)
    assert rotated.status_code == 201
    new = rotated.json()
    assert (await config(client, widget_site.token)).status_code == 401
    assert (await config(client, new["token"])).status_code == 200
    revoked = await client.delete(f"{base}/{new['id']}", headers=widget_site.admin)
    assert revoked.status_code == 204
    assert (await config(client, new["token"])).status_code == 401
    listed = (await client.get(base, headers=widget_site.admin)).json()
    assert all(t["revoked_at"] for t in listed)
    assert all("token" not in t for t in listed)  # the token itself is shown once only
    async with db.tenant(widget_site.tenant.id) as conn:
        cur = await conn.execute("SELECT before, after FROM site_changes WHERE kind = 'token'")
        changes = await cur.fetchall()
    assert len(changes) == 3  # created, rotated, revoked


@pytest.mark.claim("AUTHZ-4")
async def test_a_token_answers_from_its_own_site_only(
    client: httpx.AsyncClient, widget_site: WidgetSite, runtime: Runtime, llm: LlmStandin,
    auth_headers: AuthHeaders,
) -> None:  # fmt: skip
    sister = await make_widget_site(client, widget_site.tenant, auth_headers, name="Sister")
    await ingest(client, sister, "sister.txt", "The sister site sells purple elephants daily.")
    reply = await chat(client, widget_site.token, "Do you sell purple elephants?")
    assert reply.data("sources") == []
    assert all("elephants" not in r.raw for r in llm.requests)


@pytest.mark.claim("AUTHZ-4")
async def test_signed_visitor_identity_is_required_when_configured(
    client: httpx.AsyncClient, tenant: TenantFixture, auth_headers: AuthHeaders, runtime: Runtime
) -> None:
    site = await make_widget_site(client, tenant, auth_headers, signed=True)
    issued = await client.get(f"{site.base}/widget-tokens", headers=site.admin)
    assert issued.json()[0]["signed_visitors"] is True
    secret_response = await client.post(
        f"{site.base}/widget-tokens", json={"require_signed_visitor": True}, headers=site.admin
    )
    token, secret = secret_response.json()["token"], secret_response.json()["identity_secret"]
    visitor = "customer-4711"
    good = sign_visitor(secret, visitor)
    assert (await chat(client, token, "hi", visitor=visitor)).status == 401
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert (await chat(client, token, "hi", visitor=visitor, visitor_sig=bad)).status == 401
    other = sign_visitor(secret, "customer-0815")
    assert (await chat(client, token, "hi", visitor=visitor, visitor_sig=other)).status == 401
    assert (await chat(client, token, "hi", visitor=visitor, visitor_sig=good)).status == 200


@pytest.mark.claim("RATE-1")
@pytest.mark.parametrize(
    ("tier", "limits", "window"),
    [
        ("second", {"ip_per_second": 2}, 1),
        ("minute", {"ip_per_minute": 3}, 60),
        ("hour", {"ip_per_hour": 4}, 3600),
    ],
)
async def test_each_ip_tier_answers_429_with_retry_after(
    client: httpx.AsyncClient,
    *,
    widget_site: WidgetSite,
    runtime: Runtime,
    tier: str,
    limits: dict[str, int],
    window: int,
) -> None:
    clock = frozen(runtime, **limits)
    limit = next(iter(limits.values()))
    for _ in range(limit):
        assert (await chat(client, widget_site.token, "hello")).status == 200
    refused = await chat(client, widget_site.token, "hello")
    assert refused.status == 429
    assert refused.problem is not None
    assert refused.problem["tier"] == tier
    assert refused.problem["scope"] == "ip"
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= window
    assert refused.headers["access-control-allow-origin"] == ORIGIN  # the widget can read it
    clock[0] += retry + window  # the window has slid past every counted hit
    assert (await chat(client, widget_site.token, "hello")).status == 200


@pytest.mark.claim("RATE-1")
async def test_limits_hold_across_several_app_workers(
    client: httpx.AsyncClient,
    *,
    widget_site: WidgetSite,
    runtime: Runtime,
    app: FastAPI,
    settings: Settings,
    keys: KeySet,
) -> None:
    """Two app instances (two workers, two pools) on one database share the counters."""
    frozen(runtime, ip_per_minute=4)
    second = create_app(settings, keys=keys)
    async with second.router.lifespan_context(second):
        other = Runtime(**{**runtime.__dict__, "limiter": Limiter(second.state.db), "tasks": set()})
        other.limiter.clock = runtime.limiter.clock
        second.state.kb_runtime = other
        transport = httpx.ASGITransport(app=second, client=("203.0.113.7", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker2") as worker2:
            statuses = [
                (await chat(http, widget_site.token, "hello")).status
                for http in (client, worker2, client, worker2, client, worker2)
            ]
    assert statuses == [200, 200, 200, 200, 429, 429]


@pytest.mark.claim("RATE-1")
async def test_concurrent_checks_neither_deadlock_nor_lose_counts(
    db: Database, settings: Settings
) -> None:
    """Many workers' checks on overlapping keys at once, while per-second buckets roll over
    and old ones are deleted: no deadlock, and every hit of the live windows is counted."""
    wide = Database(settings.database_url, settings.owner_database_url, min_size=16, max_size=16)
    await wide.open()
    # Real time, read late by up to 2.4 s (a worker that waited for a connection): buckets
    # roll over during the test and checks disagree about which bucket is current.
    limiter = Limiter(wide, clock=lambda: time.time() - random.choice((0, 1.2, 2.4)))
    tiers = [Tier("second", 1, 100_000), Tier("hour", 3600, 100_000)]

    async def check(n: int) -> bool:
        scopes = [(f"ip:{n % 3}", tiers), ("token:t", tiers), ("tenant:u", tiers)]
        return (await limiter.check(scopes)).allowed

    try:
        for _ in range(6):
            assert all(await asyncio.gather(*(check(n) for n in range(60))))
            await asyncio.sleep(0.3)
    finally:
        await wide.close()
    async with db.unscoped() as conn:
        cur = await conn.execute(
            "SELECT split_part(key, '|', 1) AS scope, sum(hits) AS n FROM rate_counters"
            " WHERE key LIKE '%%|3600' GROUP BY 1"
        )
        counts = {row["scope"]: int(row["n"]) for row in await cur.fetchall()}
    assert counts["token:t"] == counts["tenant:u"] == 360
    assert sorted(counts[f"ip:{i}"] for i in range(3)) == [120, 120, 120]


@pytest.mark.claim("AUTHZ-4", "RATE-2")
async def test_token_and_tenant_budgets_are_separate(
    client: httpx.AsyncClient,
    widget_site: WidgetSite,
    runtime: Runtime,
    auth_headers: AuthHeaders,
    other_tenant: TenantFixture,
) -> None:
    frozen(runtime, token_per_minute=3, tenant_per_minute=5)
    other = await make_widget_site(client, other_tenant, auth_headers)
    for _ in range(3):
        assert (await chat(client, widget_site.token, "hi")).status == 200
    per_token = await chat(client, widget_site.token, "hi")
    assert per_token.status == 429
    assert per_token.problem is not None
    assert per_token.problem["scope"] == "token"
    # A second token of the same tenant still has its own quota, up to the tenant budget.
    second = await client.post(
        f"{widget_site.base}/widget-tokens", json={}, headers=widget_site.admin
    )
    token2 = second.json()["token"]
    assert [(await chat(client, token2, "hi")).status for _ in range(2)] == [200, 200]
    per_tenant = await chat(client, token2, "hi")
    assert per_tenant.status == 429
    assert per_tenant.problem is not None
    assert per_tenant.problem["scope"] == "tenant"
    # The other tenant is unaffected.
    assert [(await chat(client, other.token, "hi")).status for _ in range(3)] == [200] * 3


@pytest.mark.claim("AI-2")
async def test_leads_need_consent_and_are_listed_for_the_tenant_only(
    client: httpx.AsyncClient,
    widget_site: WidgetSite,
    runtime: Runtime,
    auth_headers: AuthHeaders,
    other_tenant: TenantFixture,
) -> None:
    url = f"/api/v1/widget/{widget_site.token}/leads"
    body = {"email": "ville@example.fi", "visitor_id": "visitor-0001"}
    headers = {"Origin": ORIGIN}
    for refused in (body, body | {"consent": False}, body | {"consent": True, "email": "nope"}):
        response = await client.post(url, json=refused, headers=headers)
        assert response.status_code == 422, refused
    ok = await client.post(url, json=body | {"consent": True, "name": "Ville"}, headers=headers)
    assert ok.status_code == 201
    leads = (await client.get(f"{widget_site.base}/leads", headers=widget_site.admin)).json()
    assert [(lead["email"], lead["name"]) for lead in leads] == [("ville@example.fi", "Ville")]
    assert "Shop stores my e-mail" in leads[0]["consent_text"]
    other = auth_headers(other_tenant.admin, other_tenant)
    theirs = await client.get(f"{widget_site.base}/leads", headers=other)
    assert theirs.status_code == 404


@pytest.mark.claim("GDPR-21")
async def test_analytics_groups_questions_and_lists_unanswered(
    client: httpx.AsyncClient, widget_site: WidgetSite, runtime: Runtime, db: Database
) -> None:
    await ingest(client, widget_site, "faq.txt", "Delivery takes two working days in Finland.")
    for visitor, question in [
        ("visitor-0001", "How long does delivery take?"),
        ("visitor-0002", "how long does delivery take"),
        ("visitor-0003", "HOW LONG does delivery take??"),
        ("visitor-0004", "Can I pay with bitcoin?"),
        ("visitor-0005", "How long does delivery take?"),
    ]:
        await chat(client, widget_site.token, question, visitor=visitor)
    await client.post(
        f"/api/v1/widget/{widget_site.token}/leads",
        json={"email": "a@example.fi", "consent": True, "visitor_id": "visitor-0004"},
        headers={"Origin": ORIGIN},
    )
    async with db.tenant(widget_site.tenant.id) as conn:  # visitor 5 objected to analytics
        await conn.execute(
            "INSERT INTO processing_restrictions (tenant_id, visitor_id, kind)"
            " VALUES (%s, 'visitor-0005', 'objection')",
            [widget_site.tenant.id],
        )
    stats = (await client.get(f"{widget_site.base}/analytics", headers=widget_site.admin)).json()
    assert sum(d["count"] for d in stats["conversations_per_day"]) == 4
    top = stats["top_questions"][0]
    assert top["count"] == 3
    assert re.sub(r"\W", "", top["question"].lower()) == "howlongdoesdeliverytake"
    assert [u["question"] for u in stats["unanswered"]] == ["Can I pay with bitcoin?"]
    assert stats["leads_total"] == 1


@pytest.mark.claim("SUB-2", "EPRIV-1")
async def test_widget_script_is_small_and_self_contained(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/widget/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    script = response.text
    assert len(gzip.compress(response.content)) <= 12 * 1024
    for forbidden in (
        "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
        "new Function", "document.cookie", "setTimeout(\"", "toDataURL", "getImageData",
        "AudioContext", "navigator.plugins", "http://", "https://",
    ):  # fmt: skip
        assert forbidden not in script, forbidden
    assert "localStorage" in script
    assert "attachShadow" in script
