"""Accent- and case-insensitive search text, the same on PostgreSQL and SQLite."""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def search_text(full_name: str, email: str | None, phone: str | None, document: str | None) -> str:
    parts = [full_name, email or "", phone or "", digits(phone or ""), document or ""]
    parts.append(digits(document or ""))
    return " | ".join(normalize(part) for part in parts if part)


def like_pattern(query: str) -> str:
    """`%q%` with LIKE wildcards in the query escaped (used with ESCAPE '\\')."""
    escaped = normalize(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
