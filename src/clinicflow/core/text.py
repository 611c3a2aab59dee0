"""Text folded for comparison: accents and case set aside, as people read names."""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    """ "Álvaro Zé" → "alvaro ze": what a search matches and a by-name list sorts on."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()
