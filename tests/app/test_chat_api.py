"""The chat endpoint end to end: retrieval from the tenant's KB, the one provider request
and what it holds (AI-1, AI-2, AI-3), streaming, failures that lose nothing, the cost cap
(RATE-3) and per-tenant separation (RATE-2)."""

from __future__ import annotations

import httpx
import pytest

from app.chat.runtime import Runtime
from app.chat.service import CAPPED, FAILED, NO_ANSWER
from app.core.db import Database
from app.standins.llm import LlmStandin
from tests.app.conftest import AuthHeaders, TenantFixture
from tests.app.kb_fixtures import (
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

FAQ = (
    "Acme delivers to Finland, Sweden and Estonia. Delivery takes two working days.\n\n"
    "Returns are free within 30 days of delivery. Contact support@acme.example for returns."
)
OTHER_FAQ = "Zebra Corp secret roadmap: the Quokka launch happens in March."


@pytest.fixture
async def stocked(
    client: httpx.AsyncClient, widget_site: WidgetSite, runtime: Runtime
) -> WidgetSite:
    await ingest(client, widget_site, "faq.txt", FAQ)
    return widget_site


@pytest.mark.claim("AI-1", "RES-6")
async def test_answer_streams_with_sources_and_is_stored(
    client: httpx.AsyncClient, stocked: WidgetSite, llm: LlmStandin, db: Database
) -> None:
    reply = await chat(client, stocked.token, "How long does delivery take?")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert [e for e, _ in reply.events][:2] == ["session", "sources"]
    assert reply.events[-1][0] == "done"
    assert reply.text == llm.reply
    assert reply.data("sources") == [{"title": "faq.txt", "url": ""}]
    async with db.tenant(stocked.tenant.id) as conn:
        cur = await conn.execute("SELECT role, content FROM chat_messages ORDER BY id")
        rows = await cur.fetchall()
    assert [(r["role"], r["content"]) for r in rows] == [
        ("user", "How long does delivery take?"),
        ("assistant", llm.reply),
    ]


@pytest.mark.claim("AI-1", "AI-2")
async def test_provider_request_holds_only_what_ai1_lists(
    client: httpx.AsyncClient,
    *,
    stocked: WidgetSite,
    runtime: Runtime,
    llm: LlmStandin,
    auth_headers: AuthHeaders,
    other_tenant: TenantFixture,
) -> None:
    other = await make_widget_site(client, other_tenant, auth_headers)
    await ingest(client, other, "roadmap.txt", OTHER_FAQ)
    await chat(client, other.token, "When is the Quokka launch?", visitor="visitor-other")
    # Another session of another visitor on the same site: must not leak into this one.
    await chat(client, stocked.token, "Unrelated question about Sweden", visitor="visitor-bbbb")
    lead = await client.post(
        f"/api/v1/widget/{stocked.token}/leads",
        json={"email": "lead.person@example.org", "consent": True, "visitor_id": "visitor-aaaa"},
        headers={"Origin": "https://shop.example"},
    )
    assert lead.status_code == 201, lead.text
    first = await chat(client, stocked.token, "Do you deliver to Estonia?", visitor="visitor-aaaa")
    session = first.data("session")["session_id"]
    llm.requests.clear()
    planted = "I am anna.k@example.fi, call +358 40 123 4567, my id is 131052-308T"
    await chat(
        client, stocked.token, f"{planted}. Are returns free?", visitor="visitor-aaaa",
        session_id=session,
    )  # fmt: skip

    assert len(llm.requests) == 1
    sent = llm.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert set(sent.body) == {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "temperature",
    }
    system, *history, current = sent.body["messages"]
    # System instructions with the site's settings and this tenant's chunks.
    assert "language with code 'en'" in system["content"]
    assert "Returns are free within 30 days" in system["content"]
    # This session's earlier turns only, then the current (redacted) message.
    assert [t["content"] for t in history] == ["Do you deliver to Estonia?", llm.reply]
    assert current["role"] == "user"
    assert current["content"].endswith("Are returns free?")
    for absent in (
        "anna.k@example.fi", "+358 40 123 4567", "131052-308T",  # planted identifiers
        "lead.person@example.org",  # the lead's e-mail
        "Quokka", "Zebra",  # the other tenant's knowledge and question
        "Unrelated question about Sweden",  # another session's turn
        "visitor-aaaa", "visitor-bbbb", str(stocked.tenant.id), session,  # identifiers
    ):  # fmt: skip
        assert absent not in sent.raw, absent


@pytest.mark.claim("AI-1")
async def test_another_visitors_session_id_starts_a_new_session(
    client: httpx.AsyncClient, stocked: WidgetSite, llm: LlmStandin, db: Database
) -> None:
    """A session id is honoured only for its own visitor: anyone else gets a new session,
    and its provider request holds none of the other session's turns."""
    first = await chat(client, stocked.token, "Do you deliver to Estonia?", visitor="visitor-aaaa")
    session = first.data("session")["session_id"]
    llm.requests.clear()
    other = await chat(
        client, stocked.token, "Are returns free?", visitor="visitor-bbbb", session_id=session
    )
    assert other.status == 200
    assert other.data("session")["session_id"] != session
    assert [m["role"] for m in llm.requests[0].body["messages"]] == ["system", "user"]
    async with db.tenant(stocked.tenant.id) as conn:
        cur = await conn.execute(
            "SELECT visitor_id, count(*) AS n FROM chat_messages GROUP BY 1 ORDER BY 1"
        )
        rows = [(r["visitor_id"], r["n"]) for r in await cur.fetchall()]
    assert rows == [("visitor-aaaa", 2), ("visitor-bbbb", 2)]


@pytest.mark.claim("AI-3")
async def test_only_the_chat_completions_endpoint_is_called(
    client: httpx.AsyncClient, stocked: WidgetSite, llm: LlmStandin
) -> None:
    for question in ("Delivery to Sweden?", "Returns?", "Estonia?"):
        await chat(client, stocked.token, question)
    assert {r.path for r in llm.requests} == {"/v1/chat/completions"}
    assert {r.method for r in llm.requests} == {"POST"}


async def test_provider_failure_gives_a_clear_message_and_loses_nothing(
    client: httpx.AsyncClient, stocked: WidgetSite, llm: LlmStandin, db: Database
) -> None:
    llm.fail_next(500, 500)
    reply = await chat(client, stocked.token, "Returns within how many days?")
    assert reply.status == 200
    assert reply.events[-1] == ("error", {"detail": FAILED})
    async with db.tenant(stocked.tenant.id) as conn:
        cur = await conn.execute("SELECT role, content, outcome FROM chat_messages ORDER BY id")
        rows = [(r["role"], r["content"], r["outcome"]) for r in await cur.fetchall()]
    assert rows == [("user", "Returns within how many days?", "ok"), ("assistant", "", "failed")]
    again = await chat(client, stocked.token, "Returns within how many days?")
    assert again.text == llm.reply


async def test_question_without_relevant_knowledge_calls_no_provider(
    client: httpx.AsyncClient, widget_site: WidgetSite, runtime: Runtime, llm: LlmStandin
) -> None:
    reply = await chat(client, widget_site.token, "What is the meaning of life?")
    assert reply.text == NO_ANSWER
    assert llm.requests == []


@pytest.mark.claim("RATE-3", "RATE-2")
async def test_daily_cost_cap_stops_generation_without_a_provider_call(
    client: httpx.AsyncClient,
    *,
    stocked: WidgetSite,
    runtime: Runtime,
    llm: LlmStandin,
    db: Database,
    auth_headers: AuthHeaders,
    other_tenant: TenantFixture,
) -> None:
    runtime.ai = runtime.ai.model_copy(update={"daily_cost_cap_eur": 0.00001})  # 10 micro-EUR
    first = await chat(client, stocked.token, "How long does delivery take?")
    assert first.text == llm.reply
    async with db.tenant(stocked.tenant.id) as conn:
        cur = await conn.execute(
            "SELECT calls, tokens_in, tokens_out, cost_micro_eur FROM ai_usage"
        )
        usage = await cur.fetchone()
    assert usage is not None
    assert usage["calls"] == 1
    assert usage["tokens_in"] > 0
    assert usage["cost_micro_eur"] >= 10
    calls = len(llm.requests)
    capped = await chat(client, stocked.token, "And returns?")
    assert capped.text == CAPPED
    assert capped.events[-1][0] == "done"
    assert len(llm.requests) == calls  # no provider call over the cap
    # Another tenant's budget is its own.
    other = await make_widget_site(client, other_tenant, auth_headers)
    await ingest(client, other, "faq.txt", FAQ)
    assert (await chat(client, other.token, "How long does delivery take?")).text == llm.reply


@pytest.mark.claim("GDPR-18")
async def test_restricted_visitor_gets_no_ai_processing(
    client: httpx.AsyncClient, stocked: WidgetSite, llm: LlmStandin, db: Database
) -> None:
    async with db.tenant(stocked.tenant.id) as conn:
        await conn.execute(
            "INSERT INTO processing_restrictions (tenant_id, visitor_id, kind)"
            " VALUES (%s, 'visitor-restricted', 'restriction')",
            [stocked.tenant.id],
        )
    refused = await chat(client, stocked.token, "Are returns free?", visitor="visitor-restricted")
    assert refused.status == 403
    assert llm.requests == []
    async with db.tenant(stocked.tenant.id) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM chat_messages")
        row = await cur.fetchone()
    assert row is not None
    assert row["n"] == 0
    assert (await chat(client, stocked.token, "Are returns free?")).text == llm.reply
