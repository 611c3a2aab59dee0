"""Accent- and case-insensitive patient search, the same on PostgreSQL and SQLite.

A patient is found by its *terms*: the words of its name, e-mail, phone and document (runs of
letters and digits, normalised), plus the digits-only forms of phone and document. A query is
split the same way and matches when every one of its words is the start of one of the patient's
terms ("ana lim" finds "Ana Lima"). The terms live in `patient_search_terms`, where a prefix is a
btree range that PostgreSQL can use under Row-Level Security (text comparison is LEAKPROOF,
LIKE is not). A query without any letter or digit ("%") falls back to a substring match on
`search_text`.
"""

from __future__ import annotations

import re

from clinicflow.core.text import normalize

# Longer words are cut to this many characters, terms and query words alike (so a cut query
# word is still a prefix of the cut term): every index entry stays small whatever a name
# expands to under NFKD (one character can become 18 bytes; btree refuses ~2.7 kB).
MAX_TERM = 64
# The largest code point: `word <= term < word + PREFIX_END` holds exactly for the terms that
# start with `word`, in byte order (COLLATE "C" on PostgreSQL, SQLite's BINARY).
PREFIX_END = "\U0010ffff"
# Terms are also filed under their first HEAD_LENGTH characters (`patient_search_terms.head`),
# in page order: a query word at least this long reads its matches from one head, in order.
HEAD_LENGTH = 5
_SEPARATORS = re.compile(r"[\W_]+")


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def words(text: str) -> list[str]:
    """The normalised runs of letters and digits of `text`, in order, cut to MAX_TERM."""
    return [word[:MAX_TERM] for word in _SEPARATORS.split(normalize(text)) if word]


def search_terms(
    full_name: str, email: str | None, phone: str | None, document: str | None
) -> set[str]:
    """What a patient is found by (see the module docstring)."""
    terms: set[str] = set()
    for value in (full_name, email, phone, document):
        terms.update(words(value or ""))
    # Phone numbers are also typed without separators, and often without the country or area
    # code: "+55 11 91234-5678" is found by 5511912345678, 11912345678 and 912345678.
    groups = [word for word in words(phone or "") if word.isdigit()]
    terms.update("".join(groups[start:])[:MAX_TERM] for start in range(len(groups)))
    terms.add(digits(normalize(document or ""))[:MAX_TERM])
    terms.discard("")
    return terms


def head(term: str) -> str:
    """The head a term is filed under (a query word of HEAD_LENGTH or more is looked up there)."""
    return term[:HEAD_LENGTH]


def query_words(query: str) -> list[str]:
    """The words a query must all match as prefixes. A word that starts another one is dropped
    (it is implied: "an" matches every term "ana" does), so is a repeated one."""
    found = set(words(query))
    return sorted(
        word for word in found if not any(other.startswith(word) for other in found - {word})
    )


def search_text(full_name: str, email: str | None, phone: str | None, document: str | None) -> str:
    """The substring-search fallback, for queries without a letter or digit."""
    parts = [full_name, email or "", phone or "", digits(phone or ""), document or ""]
    parts.append(digits(document or ""))
    return " | ".join(normalize(part) for part in parts if part)


def like_pattern(query: str) -> str:
    """`%q%` with LIKE wildcards in the query escaped (used with ESCAPE '\\')."""
    escaped = normalize(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
