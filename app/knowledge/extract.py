"""Text out of HTML, PDF, DOCX and plain text, and chunks out of text.

Parsers are the validators too: a file counts as a PDF only if pypdf reads it, as DOCX
only if python-docx opens it; whatever they reject is refused with the parser's reason.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin

import docx
import lxml.etree
import lxml.html
import pypdf
from pypdf.errors import PyPdfError

_SPACE = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "object")
_MAX_PDF_PAGES = 500


class ExtractionError(ValueError):
    """A document that cannot be read; the message is safe to show the user."""


@dataclass(frozen=True)
class Extracted:
    """A document's title, plain text and (for HTML) the links it holds."""

    title: str
    text: str
    links: tuple[str, ...] = ()


def normalize(text: str) -> str:
    """Collapse runs of spaces and blank lines; keep paragraph breaks."""
    lines = (_SPACE.sub(" ", line).strip() for line in text.replace("\x00", "").split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def decode_text(data: bytes) -> str:
    """UTF-8 text (a BOM allowed); binary data is refused."""
    if b"\x00" in data:
        raise ExtractionError("the file holds binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExtractionError(f"the file is not UTF-8 text (byte {exc.start})") from exc


def extract_html(data: bytes, base_url: str = "") -> Extracted:
    """Visible text, title and absolute links of an HTML page (scripts and styles dropped)."""
    try:
        root = lxml.html.document_fromstring(data)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ExtractionError(f"the HTML cannot be parsed: {exc}") from exc
    title = normalize(" ".join(root.xpath("//title//text()")))
    links = tuple(
        urldefrag(urljoin(base_url, href.strip()))[0]
        for href in root.xpath("//a/@href")
        if href.strip() and not href.strip().startswith(("#", "mailto:", "javascript:", "tel:"))
    )
    for tag in root.xpath("|".join(f"//{t}" for t in (*_DROP_TAGS, "head"))):
        tag.drop_tree()
    for block in root.xpath("//p|//div|//li|//br|//h1|//h2|//h3|//h4|//tr|//section|//article"):
        block.tail = "\n" + (block.tail or "")
    return Extracted(title, normalize(root.text_content()), links)


def extract_pdf(data: bytes) -> Extracted:
    """Text of each page of a PDF; encrypted or broken files are refused."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise ExtractionError("the PDF is encrypted")
        if len(reader.pages) > _MAX_PDF_PAGES:
            raise ExtractionError(f"the PDF has more than {_MAX_PDF_PAGES} pages")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
        title = str(meta.title) if meta is not None and meta.title else ""
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(f"the PDF cannot be read: {exc}") from exc
    return Extracted(title, normalize("\n\n".join(pages)))


def extract_docx(data: bytes) -> Extracted:
    """Paragraph text of a Word document."""
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, lxml.etree.XMLSyntaxError) as exc:
        raise ExtractionError(f"the DOCX cannot be read: {exc}") from exc
    title = document.core_properties.title or ""
    return Extracted(title, normalize("\n\n".join(p.text for p in document.paragraphs)))


def chunk_text(text: str, size: int = 900, overlap: int = 150) -> list[str]:
    """Windows of about `size` characters cut at word boundaries, each repeating the last
    `overlap` characters of the one before so that a fact split by a cut stays findable."""
    words = text.split()
    chunks: list[str] = []
    start = 0
    while start < len(words):
        end, length = start, 0
        while end < len(words) and (length + len(words[end]) + 1 <= size or end == start):
            length += len(words[end]) + 1
            end += 1
        chunks.append(" ".join(words[start:end]))
        if end >= len(words):
            break
        back, kept = end, 0
        while back > start + 1 and kept + len(words[back - 1]) + 1 <= overlap:
            back -= 1
            kept += len(words[back]) + 1
        start = back
    return chunks
