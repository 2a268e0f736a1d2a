"""Crawl one website: sitemap plus same-site links, breadth first, within depth and page
limits, honouring robots.txt; every fetch goes through the SSRF-safe fetcher (VAL-2)."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import lxml.etree

from app.knowledge.extract import (
    Extracted,
    ExtractionError,
    decode_text,
    extract_html,
    extract_pdf,
    normalize,
)
from app.knowledge.ssrf import SafeFetcher, SSRFError

USER_AGENT_TOKEN = "CloopBot"  # noqa: S105 - a robots.txt agent name
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_XML = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass(frozen=True)
class CrawlLimits:
    """How far a crawl may go."""

    max_pages: int = 200
    max_depth: int = 3


@dataclass(frozen=True)
class Page:
    """One crawled page: its URL, extracted text and a hash of that text (re-crawls
    compare hashes to update only what changed)."""

    url: str
    title: str
    text: str
    content_hash: str


@dataclass(frozen=True)
class Skipped:
    """A URL the crawl could not use, and why (shown in the job's progress)."""

    url: str
    reason: str


def same_site(url: str, root: str) -> bool:
    """Same scheme, host and port as the start URL."""
    a, b = urlsplit(url), urlsplit(root)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def extract_page(url: str, content_type: str, body: bytes) -> Extracted:
    """Text by content type: HTML, PDF or plain text; anything else is refused."""
    if content_type in ("text/html", "application/xhtml+xml"):
        return extract_html(body, url)
    if content_type == "application/pdf":
        return extract_pdf(body)
    if content_type in ("text/plain", "text/markdown"):
        return Extracted("", normalize(decode_text(body)))
    raise ExtractionError(f"unsupported content type {content_type or 'unknown'}")


def parse_sitemap(body: bytes) -> list[str]:
    """The `<loc>` URLs of a sitemap or sitemap index (entities never resolved)."""
    try:
        root = lxml.etree.fromstring(body, _XML)
    except lxml.etree.XMLSyntaxError:
        return []
    return [(loc.text or "").strip() for loc in root.iter(f"{_SITEMAP_NS}loc") if loc.text]


class Crawler:
    """Breadth-first crawl of one site through a SafeFetcher."""

    def __init__(self, fetcher: SafeFetcher, limits: CrawlLimits | None = None) -> None:
        self._fetcher = fetcher
        self._limits = limits or CrawlLimits()

    async def crawl(self, start_url: str) -> AsyncIterator[Page | Skipped]:
        """Yield pages (and skipped URLs) until the site or the limits are exhausted."""
        start = urldefrag(start_url)[0]
        robots = await self._robots(start)
        queue: deque[tuple[str, int]] = deque([(start, 0)])
        seen = {start}
        for url in await self._sitemap(start):
            if url not in seen and same_site(url, start):
                seen.add(url)
                queue.append((url, 1))
        pages = 0
        while queue and pages < self._limits.max_pages:
            url, depth = queue.popleft()
            if not robots.can_fetch(USER_AGENT_TOKEN, url):
                yield Skipped(url, "disallowed by robots.txt")
                continue
            try:
                fetched = await self._fetcher.get(url)
                if fetched.status != 200:
                    raise ExtractionError(f"HTTP status {fetched.status}")
                if not same_site(fetched.url, start):
                    raise ExtractionError("redirected to another site")
                doc = extract_page(fetched.url, fetched.content_type, fetched.body)
            except (SSRFError, ExtractionError) as exc:
                yield Skipped(url, str(exc))
                continue
            except Exception as exc:  # network errors of one page skip that page
                yield Skipped(url, f"fetch failed: {type(exc).__name__}")
                continue
            pages += 1
            digest = hashlib.sha256(doc.text.encode()).hexdigest()
            yield Page(fetched.url, doc.title or fetched.url, doc.text, digest)
            if depth < self._limits.max_depth:
                for link in doc.links:
                    if link not in seen and same_site(link, start):
                        seen.add(link)
                        queue.append((link, depth + 1))

    async def _robots(self, start: str) -> RobotFileParser:
        parser = RobotFileParser()
        try:
            fetched = await self._fetcher.get(urljoin(start, "/robots.txt"))
            lines = fetched.body.decode("utf-8", "replace").splitlines()
            parser.parse(lines if fetched.status == 200 else [])
        except Exception:  # no readable robots.txt means no restrictions
            parser.parse([])
        return parser

    async def _sitemap(self, start: str) -> list[str]:
        try:
            fetched = await self._fetcher.get(urljoin(start, "/sitemap.xml"))
        except Exception:  # a site without a sitemap is crawled by links
            return []
        return parse_sitemap(fetched.body) if fetched.status == 200 else []
