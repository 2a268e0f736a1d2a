"""The widget in a real Chromium on a page of another origin under a strict CSP: it chats,
sets no cookie, reads no fingerprinting API, requests nothing outside the API origin, and
renders hostile answers and KB content as inert text (VAL-4, EPRIV-1, SUB-2, AUTHZ-4)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import BrowserContext, Page

from tests.browser.conftest import KB_XSS_TITLE, XSS, Stack

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
WIDGET = "[data-cloop-widget]"


async def ask(page: Page, question: str) -> str:
    """Type a question, wait for the streamed answer to finish, return the answer's text."""
    answers = page.locator(f"{WIDGET} .m.bot")
    before = await answers.count()
    if not await page.locator(f"{WIDGET} .open").count():
        await page.click(f"{WIDGET} .launch")
    await page.fill(f"{WIDGET} input[name=message]", question)
    await page.press(f"{WIDGET} input[name=message]", "Enter")
    await page.wait_for_function(
        """([sel, n]) => {
             const root = document.querySelector(sel).shadowRoot;
             const bots = root.querySelectorAll('.m.bot');
             return bots.length > n && !root.querySelector('form:not(.lead) button.send').disabled;
           }""",
        arg=[WIDGET, before],
        timeout=30000,
    )
    return await answers.nth(before).locator("span").first.text_content() or ""


def origins(urls: list[str]) -> set[str]:
    return {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in urls}


@pytest.mark.claim("EPRIV-1", "SUB-2", "AUTHZ-4")
async def test_widget_chats_from_another_origin_without_cookies_or_tracking(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    answer = await ask(page, "How long does delivery to Sweden take?")
    assert answer.startswith("Here is the answer")
    assert len(stack.llm.requests) == 1  # the question went through the API to the provider
    assert await context.cookies() == []
    assert await page.evaluate("document.cookie") == ""
    stored = await page.evaluate("Object.keys(localStorage)")
    assert any(key.endswith(".visitor") for key in stored)
    assert origins(stack.requests) == {stack.page, stack.api}
    api_calls = {urlsplit(u).path for u in stack.requests if u.startswith(stack.api)}
    assert api_calls == {
        "/api/v1/widget/widget.js",
        f"/api/v1/widget/{stack.site.token}/config",
        f"/api/v1/widget/{stack.site.token}/chat",
    }
    audit = await page.evaluate("window.__audit")
    assert audit == {"fingerprint": [], "csp": []}


@pytest.mark.claim("EPRIV-1")
async def test_visitor_id_persists_across_visits_in_local_storage(page: Page, stack: Stack) -> None:
    await ask(page, "Do you rent tents?")
    first = await page.evaluate("JSON.stringify(localStorage)")
    await page.reload()
    await page.wait_for_selector(f"{WIDGET} .launch")
    await ask(page, "And sleeping bags?")
    assert await page.evaluate("JSON.stringify(localStorage)") == first
    async with stack.db.tenant(stack.site.tenant_id) as conn:
        cur = await conn.execute("SELECT count(DISTINCT visitor_id) AS n FROM chat_messages")
        row = await cur.fetchone()
    assert row is not None
    assert row["n"] == 1


@pytest.mark.claim("VAL-4")
async def test_hostile_answers_and_kb_content_render_as_inert_text(
    page: Page, stack: Stack
) -> None:
    answer = await ask(page, "How long does shipping take?")
    assert XSS in answer  # shown literally, character for character
    assert "[link](javascript:alert(1))" in answer
    root = f"document.querySelector('{WIDGET}').shadowRoot"
    sources = await page.evaluate(f"{root}.querySelector('.src').textContent")
    assert KB_XSS_TITLE in sources
    injected = await page.evaluate(
        f"{root}.querySelectorAll('img, script, svg, b, iframe, a[href^=javascript]').length"
    )
    assert injected == 0
    assert await page.evaluate("window.__xss") is None
    assert origins(stack.requests) == {stack.page, stack.api}  # no img src=x was fetched


@pytest.mark.claim("AI-2")
async def test_lead_form_stores_the_email_with_consent_and_never_sends_it(
    page: Page, stack: Stack
) -> None:
    await ask(page, "Can I rent a tent?")
    await page.click(f"{WIDGET} .link")
    await page.fill(f"{WIDGET} form.lead input[type=email]", "kaisa@example.fi")
    await page.check(f"{WIDGET} form.lead input[type=checkbox]")
    await page.click(f"{WIDGET} form.lead button.send")
    await page.wait_for_function(
        "(sel) => document.querySelector(sel).shadowRoot.textContent.includes('Thank you')",
        arg=WIDGET,
    )
    await ask(page, "When is the store open?")
    async with stack.db.tenant(stack.site.tenant_id) as conn:
        cur = await conn.execute("SELECT email, consent_text FROM leads")
        leads = await cur.fetchall()
    assert [lead["email"] for lead in leads] == ["kaisa@example.fi"]
    assert "stores my e-mail" in leads[0]["consent_text"]
    assert all("kaisa@example.fi" not in r.raw for r in stack.llm.requests)
