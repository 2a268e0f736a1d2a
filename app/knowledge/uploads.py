"""Upload validation by content and size (VAL-3).

The kind of a file is decided by its bytes (magic numbers, then the real parser), and it
must agree with the name's extension: a renamed executable or a PDF called `.docx` is
refused. Nothing is stored before a file passed all checks.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath

from app.knowledge.extract import (
    Extracted,
    ExtractionError,
    decode_text,
    extract_docx,
    extract_html,
    extract_pdf,
    normalize,
)

KINDS_BY_EXTENSION = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
}
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "text": "text/plain; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")


class UploadRejectedError(ValueError):
    """A refused upload; the message tells the user what is wrong."""


@dataclass(frozen=True)
class ValidUpload:
    """An upload that passed every check, with its text already extracted."""

    filename: str
    kind: str
    content_type: str
    document: Extracted


def sniff(data: bytes) -> str:
    """The kind the bytes are, whatever the file is called."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(BytesIO(data)).namelist())
        except zipfile.BadZipFile:
            return "broken zip"
        return "docx" if "word/document.xml" in names else "zip archive"
    head = data[:512].lstrip().lower()
    if head.startswith(_HTML_STARTS):
        return "html"
    try:
        decode_text(data)
    except ExtractionError:
        return "binary (not UTF-8 text)"
    return "text"


def validate_upload(filename: str, data: bytes, max_bytes: int) -> ValidUpload:
    """Check size, kind by content against the extension, and that the parser reads it."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    if len(data) > max_bytes:
        raise UploadRejectedError(f"the file is larger than {max_bytes // (1024 * 1024)} MiB")
    if not data:
        raise UploadRejectedError("the file is empty")
    declared = KINDS_BY_EXTENSION.get(PurePosixPath(name).suffix.lower())
    if declared is None:
        allowed = ", ".join(sorted(KINDS_BY_EXTENSION))
        raise UploadRejectedError(f"unsupported file type; allowed: {allowed}")
    actual = sniff(data)
    compatible = actual == declared or (actual == "text" and declared == "markdown")
    if not compatible:
        raise UploadRejectedError(f"the file is named {name!r} but its content is {actual}")
    try:
        document = _extract(declared, data)
    except ExtractionError as exc:
        raise UploadRejectedError(str(exc)) from exc
    if not document.text:
        raise UploadRejectedError("the file holds no text")
    title = document.title or name
    return ValidUpload(name, declared, CONTENT_TYPES[declared], Extracted(title, document.text))


def _extract(kind: str, data: bytes) -> Extracted:
    if kind == "pdf":
        return extract_pdf(data)
    if kind == "docx":
        return extract_docx(data)
    if kind == "html":
        return extract_html(data)
    return Extracted("", normalize(decode_text(data)))
