"""Uploads are recognised by their bytes, must match their name, fit the size cap and
parse; anything else is refused with a clear reason (VAL-3)."""

from __future__ import annotations

import itertools

import pytest

from app.knowledge.extract import chunk_text
from app.knowledge.uploads import UploadRejectedError, validate_upload
from tests.app.kb_files import make_docx, make_pdf

MIB = 1024 * 1024
ELF = b"\x7fELF\x02\x01\x01" + bytes(200)


@pytest.mark.claim("VAL-3")
@pytest.mark.parametrize(
    ("name", "data", "kind", "needle"),
    [
        ("guide.pdf", make_pdf("Opening hours are nine to five"), "pdf", "nine to five"),
        ("faq.docx", make_docx("Shipping takes two days.", "Returns are free."), "docx", "free"),
        ("notes.txt", b"Plain text about pricing.", "text", "pricing"),
        ("readme.md", b"# Title\n\nMarkdown *body* here.", "markdown", "Markdown"),
        ("page.html", b"<!doctype html><title>T</title><p>Visible</p><script>x()</script>",
         "html", "Visible"),
    ],
)  # fmt: skip
def test_supported_files_are_accepted_and_read(
    name: str, data: bytes, kind: str, needle: str
) -> None:
    upload = validate_upload(name, data, max_bytes=MIB)
    assert upload.kind == kind
    assert needle in upload.document.text
    assert "x()" not in upload.document.text


@pytest.mark.claim("VAL-3")
@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("big.txt", b"a" * (MIB + 1), "larger than 1 MiB"),
        ("empty.txt", b"", "empty"),
        ("tool.exe", ELF, "unsupported file type"),
        ("invoice.pdf", ELF, "content is binary"),
        ("letter.docx", make_pdf("hello"), "content is pdf"),
        ("slides.pdf", make_docx("hello"), "content is docx"),
        ("page.html", make_pdf("hello"), "content is pdf"),
        ("notes.txt", ELF, "content is binary"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", "PDF cannot be read"),
        ("archive.docx", b"PK\x03\x04" + bytes(100), "content is broken zip"),
        ("blank.pdf", make_pdf(""), "no text"),
    ],
)
def test_oversized_mislabelled_and_malformed_files_are_refused(
    name: str, data: bytes, reason: str
) -> None:
    with pytest.raises(UploadRejectedError, match=reason):
        validate_upload(name, data, max_bytes=MIB)


def test_chunks_overlap_so_a_fact_on_a_cut_stays_whole() -> None:
    words = [f"w{i}" for i in range(600)]
    chunks = chunk_text(" ".join(words), size=200, overlap=50)
    assert len(chunks) > 5
    for before, after in itertools.pairwise(chunks):
        tail = before.split()[-5:]
        assert " ".join(tail) in after
        assert len(before) <= 200
    assert " ".join(chunks).split()[-1] == "w599"
    assert set(" ".join(chunks).split()) == set(words)
