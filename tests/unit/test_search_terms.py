"""What a patient is found by (`clinicflow.patients.search`), without a database."""

from __future__ import annotations

from clinicflow.patients.search import MAX_TERM, PREFIX_END, query_words, search_terms


def test_terms_are_the_normalised_words_of_name_email_phone_and_document() -> None:
    terms = search_terms("João da Silva-Müller", "Joao.Silva@Clinic.example", None, None)
    assert terms == {"joao", "da", "silva", "muller", "clinic", "example"}


def test_phone_is_found_as_written_and_by_its_digits_with_or_without_country_and_area() -> None:
    terms = search_terms("Ana", None, "+55 (11) 91234-5678", None)
    assert {"55", "11", "91234", "5678"} <= terms  # as written
    assert {"5511912345678", "11912345678", "912345678"} <= terms  # typed without separators


def test_document_is_found_by_its_parts_and_its_digits() -> None:
    terms = search_terms("Ana", None, None, "987.654.321-00")
    assert {"987", "654", "321", "00", "98765432100"} <= terms


def test_a_word_longer_than_the_limit_is_cut_and_still_found_by_its_start() -> None:
    # One character can expand to 18 bytes under NFKD: uncut, such a name overflows a btree entry.
    name = "\u3316" * 200
    (term,) = search_terms(name, None, None, None)
    assert len(term) == MAX_TERM
    (word,) = query_words(name)
    assert term.startswith(word)


def test_query_words_drop_separators_repeats_and_words_implied_by_longer_ones() -> None:
    assert query_words("  Ana,  LIMA ana ") == ["ana", "lima"]
    assert query_words("an ana") == ["ana"]  # "an" starts every term "ana" starts
    assert query_words("%_@") == []  # no letter or digit: the caller falls back to a substring


def test_prefix_end_sorts_after_every_continuation_of_a_word() -> None:
    for term in ("silva", "silvaz", "silva\uffff", "silva\U0010fffd", "silva9"):
        assert "silva" <= term < "silva" + PREFIX_END
        assert b"silva" <= term.encode() < ("silva" + PREFIX_END).encode()  # byte order too
    assert "silva" + PREFIX_END <= "silvb"  # the next word is out of range
