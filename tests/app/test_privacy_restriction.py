"""GDPR-18 restriction and GDPR-21 objection, proven on the real widget chat and analytics
endpoints with the AI provider's calls captured: a restricted visitor (or tenant) is kept
but gets no AI call and counts in no analytics; an objection stops only the processing based
on legitimate interest (analytics, lead scoring) while the visitor is still answered."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Sequence

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from app.ai.prompt import ProviderRequest
from app.ai.provider import Usage
from app.ai.settings import AISettings
from app.chat.runtime import LimitSettings, Runtime, install_runtime
from app.core.db import Database
from app.core.tenancy import TenantId
from app.knowledge.storage import ObjectStore
from app.privacy.checks import Purpose, processing_allowed
from app.ratelimit.service import Limiter
from app.widget.service import TOKEN_PREFIX, token_hash
from tests.app.conftest import AuthHeaders
from tests.app.privacy_fixtures import Seeded, s3_settings, seeded, store

__all__ = ["s3_settings", "seeded", "store"]  # fixtures
pytestmark = pytest.mark.anyio
ORIGIN = "https://shop.example"
RESTRICTIONS = "/api/v1/privacy/restrictions"
MODEL = "all-MiniLM-L6-v2-onnx-int8"


class RecordingProvider:
    """Stands where the Nebius client stands; every request that would leave is kept."""

    def __init__(self) -> None:
        self.requests: list[ProviderRequest] = []

    async def stream(self, request: ProviderRequest) -> AsyncIterator[str | Usage]:
        self.requests.append(request)
        yield "We are open 9-17."
        yield Usage("test-model", 10, 5)


class FixedEmbedder:
    """Embeds every text to the direction of the seeded chunk, so retrieval always hits."""

    model = MODEL

    async def embed(self, texts: Sequence[str], *, visitor_text: bool = False) -> np.ndarray:
        return np.full((len(texts), 384), 1 / np.sqrt(384), dtype=np.float32)


class Widget:
    def __init__(self, client: httpx.AsyncClient, seeded: Seeded, token: str) -> None:
        self.client, self.seeded, self.token = client, seeded, token

    async def chat(self, visitor: str) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/widget/{self.token}/chat",
            headers={"Origin": ORIGIN},
            json={"message": "When are you open?", "visitor_id": visitor},
        )

    async def lead(self, visitor: str) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/widget/{self.token}/leads",
            headers={"Origin": ORIGIN},
            json={"visitor_id": visitor, "email": f"{visitor}@example.test", "consent": True},
        )


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


@pytest.fixture
async def widget(
    *,
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    seeded: Seeded,
    store: ObjectStore,
    provider: RecordingProvider,
) -> Widget:
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    async with db.owner() as conn:
        await conn.execute(
            "UPDATE sites SET allowed_origins = %s WHERE id = %s", [[ORIGIN], seeded.site_id]
        )
        await conn.execute(
            "INSERT INTO widget_tokens (tenant_id, site_id, token_hash, token_prefix)"
            " VALUES (%s, %s, %s, %s)",
            [seeded.tenant.id, seeded.site_id, token_hash(token), token[:10]],
        )
    limits = LimitSettings(ip_per_second=1000, ip_per_minute=1000, ip_per_hour=1000)
    runtime = Runtime(AISettings(), limits, FixedEmbedder(), provider, store, Limiter(db))
    install_runtime(app, runtime)
    return Widget(client, seeded, token)


def visitor() -> str:
    return f"v_{uuid.uuid4().hex[:12]}"


async def allowed(db: Database, tenant_id: TenantId, visitor_id: str) -> dict[Purpose, bool]:
    async with db.tenant(tenant_id) as conn:
        return {p: await processing_allowed(conn, tenant_id, visitor_id, p) for p in Purpose}


async def conversations_counted(widget: Widget, auth_headers: AuthHeaders) -> tuple[int, int]:
    """(conversations, leads) in the site's analytics."""
    tenant = widget.seeded.tenant
    response = await widget.client.get(
        f"/api/v1/sites/{widget.seeded.site_id}/analytics",
        headers=auth_headers(tenant.admin, tenant),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return sum(d["count"] for d in body["conversations_per_day"]), body["leads_total"]


async def stored_messages(db: Database, visitor_id: str) -> int:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_messages WHERE visitor_id = %s", [visitor_id]
        )
        row = await cur.fetchone()
        return int(row["n"]) if row else 0


@pytest.mark.claim("GDPR-18")
async def test_restricted_visitor_gets_no_ai_call_and_no_analytics(
    db: Database,
    widget: Widget,
    provider: RecordingProvider,
    auth_headers: AuthHeaders,
) -> None:
    tenant = widget.seeded.tenant
    admin = auth_headers(tenant.admin, tenant)
    restricted, other = visitor(), visitor()
    for v in (restricted, other):
        answer = await widget.chat(v)
        assert answer.status_code == 200, answer.text
        assert "We are open" in answer.text
    assert len(provider.requests) == 2
    counted_before = await conversations_counted(widget, auth_headers)

    response = await widget.client.put(
        RESTRICTIONS, headers=admin, json={"kind": "restriction", "visitor_id": restricted}
    )
    assert response.status_code == 200, response.text
    assert await allowed(db, tenant.id, restricted) == dict.fromkeys(Purpose, False)
    assert await allowed(db, tenant.id, other) == dict.fromkeys(Purpose, True)

    refused = await widget.chat(restricted)
    assert refused.status_code == 403
    assert len(provider.requests) == 2  # no AI call for the restricted visitor
    assert await stored_messages(db, restricted) == 2  # kept, not processed further
    assert await conversations_counted(widget, auth_headers) == (
        counted_before[0] - 1,
        counted_before[1],
    )
    assert (await widget.chat(other)).status_code == 200
    assert len(provider.requests) == 3


@pytest.mark.claim("GDPR-18")
async def test_restricted_tenant_makes_no_ai_calls_until_lifted(
    db: Database,
    widget: Widget,
    provider: RecordingProvider,
    auth_headers: AuthHeaders,
) -> None:
    tenant = widget.seeded.tenant
    admin = auth_headers(tenant.admin, tenant)
    member = auth_headers(tenant.member, tenant)
    assert (
        await widget.client.put(RESTRICTIONS, headers=member, json={"kind": "restriction"})
    ).status_code == 403
    assert (
        await widget.client.put(RESTRICTIONS, headers=admin, json={"kind": "restriction"})
    ).status_code == 200
    assert (await widget.chat(visitor())).status_code == 403
    assert provider.requests == []
    assert await conversations_counted(widget, auth_headers) == (0, 0)

    lifted = await widget.client.delete(RESTRICTIONS, headers=admin, params={"kind": "restriction"})
    assert lifted.status_code == 204
    assert (await widget.chat(visitor())).status_code == 200
    assert len(provider.requests) == 1
    listed = await widget.client.get(RESTRICTIONS, headers=admin)
    assert [r["visitor_id"] for r in listed.json()] == [
        widget.seeded.visitors[1]
    ]  # seeded objection


@pytest.mark.claim("GDPR-21")
async def test_objection_stops_analytics_and_lead_scoring_but_not_answers(
    db: Database,
    widget: Widget,
    provider: RecordingProvider,
    auth_headers: AuthHeaders,
) -> None:
    tenant = widget.seeded.tenant
    admin = auth_headers(tenant.admin, tenant)
    objecting = visitor()
    assert (await widget.chat(objecting)).status_code == 200
    assert (await widget.lead(objecting)).status_code == 201
    counted = await conversations_counted(widget, auth_headers)

    response = await widget.client.put(
        RESTRICTIONS, headers=admin, json={"kind": "objection", "visitor_id": objecting}
    )
    assert response.status_code == 200
    assert await allowed(db, tenant.id, objecting) == {
        Purpose.AI_ANSWER: True,
        Purpose.ANALYTICS: False,
        Purpose.LEAD_SCORING: False,
    }
    assert await conversations_counted(widget, auth_headers) == (counted[0] - 1, counted[1] - 1)
    assert (await widget.chat(objecting)).status_code == 200  # still answered (contract)
    assert len(provider.requests) == 2
    # Objection and restriction are recorded as answered data-subject requests.
    requests = (await widget.client.get("/api/v1/privacy/requests", headers=admin)).json()
    assert [(r["right_invoked"], r["status"]) for r in requests] == [("objection", "completed")]

    lifted = await widget.client.delete(
        RESTRICTIONS, headers=admin, params={"kind": "objection", "visitor_id": objecting}
    )
    assert lifted.status_code == 204
    # Counted again, with the conversation held meanwhile (each chat without a session opens one).
    assert await conversations_counted(widget, auth_headers) == (counted[0] + 1, counted[1])
    again = await widget.client.delete(
        RESTRICTIONS, headers=admin, params={"kind": "objection", "visitor_id": objecting}
    )
    assert again.status_code == 404


@pytest.mark.claim("GDPR-17")
async def test_tenant_erasure_turns_the_widget_off_at_once(
    widget: Widget, provider: RecordingProvider, auth_headers: AuthHeaders
) -> None:
    tenant = widget.seeded.tenant
    assert (await widget.chat(visitor())).status_code == 200
    erased = await widget.client.post(
        "/api/v1/privacy/erasure/tenant", headers=auth_headers(tenant.owner, tenant),
        json={"confirm_tenant_id": str(tenant.id)},
    )  # fmt: skip
    assert erased.status_code == 202
    for response in (await widget.chat(visitor()), await widget.lead(visitor())):
        assert response.status_code == 401, response.text
    assert len(provider.requests) == 1
