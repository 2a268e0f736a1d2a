"""The crawler follows the sitemap and same-site links within its limits, honours
robots.txt, reads HTML, PDF and text, and never leaves the site."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from app.knowledge.crawler import Crawler, CrawlLimits, Page, Skipped
from app.knowledge.ssrf import AddressPolicy, SafeFetcher
from tests.app.kb_files import LoopbackSite, make_pdf

pytestmark = pytest.mark.anyio

LOOPBACK_ONLY = AddressPolicy(extra_allowed=(ipaddress.ip_network("127.0.0.1/32"),))


def html(title: str, body: str) -> tuple[str, bytes]:
    return (
        "text/html",
        f"<html><head><title>{title}</title></head><body>{body}</body></html>".encode(),
    )


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    running = LoopbackSite().start()
    running.pages |= {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private\n"),
        "/sitemap.xml": (
            "application/xml",
            b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<url><loc>SITE/from-sitemap</loc></url></urlset>".replace(
                b"SITE", running.url.encode()
            ),
        ),
        "/": html("Home", '<a href="/a">A</a> <a href="/private/x">P</a>'
                  '<a href="http://other.example/">ext</a> <a href="/doc.pdf">pdf</a>'),
        "/a": html("A", 'Page A <a href="/b">B</a>'),
        "/b": html("B", 'Page B <a href="/c">C</a>'),
        "/c": html("C", "Page C, too deep"),
        "/doc.pdf": ("application/pdf", make_pdf("Warranty lasts two years")),
        "/from-sitemap": ("text/plain", b"Listed only in the sitemap"),
        "/private/x": html("Private", "never crawled"),
    }  # fmt: skip
    yield running
    running.stop()


async def crawl(start: str, limits: CrawlLimits) -> list[Page | Skipped]:
    async with SafeFetcher(LOOPBACK_ONLY) as fetcher:
        return [item async for item in Crawler(fetcher, limits).crawl(start)]


async def test_crawl_follows_sitemap_and_links_within_depth(site: LoopbackSite) -> None:
    items = await crawl(site.url + "/", CrawlLimits(max_pages=50, max_depth=2))
    pages = {p.url.removeprefix(site.url): p for p in items if isinstance(p, Page)}
    assert set(pages) == {"/", "/a", "/b", "/doc.pdf", "/from-sitemap"}
    assert "Warranty lasts two years" in pages["/doc.pdf"].text
    assert pages["/a"].title == "A"
    skipped = {s.url.removeprefix(site.url): s.reason for s in items if isinstance(s, Skipped)}
    assert skipped == {"/private/x": "disallowed by robots.txt"}
    assert site.hits["/private/x"] == 0
    assert site.hits["/c"] == 0


async def test_page_limit_stops_the_crawl(site: LoopbackSite) -> None:
    items = await crawl(site.url + "/", CrawlLimits(max_pages=2, max_depth=5))
    assert len([p for p in items if isinstance(p, Page)]) == 2


async def test_unchanged_page_keeps_its_hash(site: LoopbackSite) -> None:
    first = {
        p.url: p.content_hash
        for p in await crawl(site.url + "/", CrawlLimits())
        if isinstance(p, Page)
    }
    site.pages["/a"] = html("A", 'Page A changed <a href="/b">B</a>')
    second = {
        p.url: p.content_hash
        for p in await crawl(site.url + "/", CrawlLimits())
        if isinstance(p, Page)
    }
    changed = {url for url in first if first[url] != second.get(url)}
    assert changed == {site.url + "/a"}
