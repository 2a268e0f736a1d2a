"""Redaction of identifiers in visitor text before anything leaves for the provider (AI-2).

Patterns are deliberately greedy: a redacted house number costs little, a leaked phone
number or API key costs trust.
"""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("[email]", re.compile(r"[\w.+%-]+(?:@|\s?\(at\)\s?)[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)),
    ("[url-with-credentials]", re.compile(r"\b\w+://[^\s/@]+:[^\s/@]+@\S+")),
    (
        r"\1[secret]",
        re.compile(
            r"(?i)(\b(?:password|passwd|pwd|passcode|pin|token|api[_ -]?key|secret|salasana)"
            r"\s*(?:is|:|=)\s*)\S+"
        ),
    ),
    ("[key]", re.compile(r"\b(?:sk|pk|rk|ghp|gho|xox[abpr]|AKIA|eyJ)[A-Za-z0-9_\-.]{12,}")),
    ("[iban]", re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b")),
    (
        "[id]",
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
    ),
    ("[personal-id]", re.compile(r"\b\d{6}[-+A-F]\d{3}[0-9A-Y]\b")),
    (
        "[ip]",
        re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b"),
    ),
    ("[phone]", re.compile(r"(?<!\w)\+?\d(?:[\s().\-/]*\d){6,}(?!\w)")),
    (
        "[token]",
        re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{24,}\b"),
    ),
)


def redact(text: str) -> str:
    """`text` with e-mail addresses, phone numbers, keys and other identifiers replaced by
    a bracketed label naming what was removed."""
    for label, pattern in _PATTERNS:
        text = pattern.sub(label, text)
    return text
