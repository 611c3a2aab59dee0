"""Queries of patients (tenant-scoped; soft-deleted rows are never returned)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Integer,
    Select,
    Subquery,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import CTE

from clinicflow.core.hotread import HotRead
from clinicflow.core.models import row_columns
from clinicflow.patients.models import Patient, PatientSearchTerm, PatientView
from clinicflow.patients.search import HEAD_LENGTH, PREFIX_END, head, like_pattern, query_words


@dataclass(frozen=True, slots=True)
class PatientFilters:
    q: str | None = None
    active: bool | None = None
    birth_date_from: date | None = None
    birth_date_to: date | None = None


class PatientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, patient: Patient) -> None:
        self.session.add(patient)

    async def get(self, patient_id: uuid.UUID, *, lock: bool = False) -> Patient | None:
        """`lock`: FOR UPDATE, read afresh, for a change made from what is read (its terms)."""
        statement = select(Patient).where(Patient.id == patient_id, Patient.deleted_at.is_(None))
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    def add_terms(self, patient_id: uuid.UUID, full_name: str, terms: set[str]) -> None:
        """The search terms of a patient written just now (see `patients.search`)."""
        self.session.add_all(
            PatientSearchTerm(patient_id=patient_id, term=t, head=head(t), full_name=full_name)
            for t in terms
        )

    async def replace_terms(self, patient_id: uuid.UUID, full_name: str, terms: set[str]) -> None:
        """Make the patient's stored terms exactly `terms`, filed under `full_name` (its page
        order), touching only what changed."""
        stored = {
            row.term: row.full_name
            for row in await self.session.execute(
                select(PatientSearchTerm.term, PatientSearchTerm.full_name).where(
                    PatientSearchTerm.patient_id == patient_id
                )
            )
        }
        if stale := set(stored) - terms:
            await self.session.execute(
                delete(PatientSearchTerm).where(
                    PatientSearchTerm.patient_id == patient_id, PatientSearchTerm.term.in_(stale)
                )
            )
        if any(name != full_name for term, name in stored.items() if term in terms):
            await self.session.execute(
                update(PatientSearchTerm)
                .where(
                    PatientSearchTerm.patient_id == patient_id,
                    PatientSearchTerm.full_name != full_name,
                )
                .values(full_name=full_name)
                .execution_options(synchronize_session=False)
            )
        self.add_terms(patient_id, full_name, terms - set(stored))

    async def remove_terms(self, patient_id: uuid.UUID) -> None:
        """A deleted patient is found by nothing."""
        await self.session.execute(
            delete(PatientSearchTerm).where(PatientSearchTerm.patient_id == patient_id)
        )

    async def names(self, patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        statement = select(Patient.id, Patient.full_name).where(
            Patient.id.in_(patient_ids), Patient.deleted_at.is_(None)
        )
        return {row.id: row.full_name for row in await self.session.execute(statement)}

    async def any_stored(self) -> bool:
        """Whether the practice has ever registered a patient (deleted ones count)."""
        statement = select(select(Patient.id).exists())
        return bool((await self.session.execute(statement)).scalar_one())

    async def count_active(self) -> int:
        statement = select(func.count()).select_from(Patient).where(Patient.deleted_at.is_(None))
        return (await self.session.execute(statement)).scalar_one()

    async def page(
        self, filters: PatientFilters, limit: int, after: tuple[str, uuid.UUID] | None
    ) -> list[PatientView]:
        """Ordered by (full_name, id), keyset after the cursor; one extra row for `more`.

        Without search words, one statement per combination of filters (`_list_read`). On
        PostgreSQL, a search with a word of two characters or more reads its words' matches
        in page order, from the cursor on, and stops after the page (`_search_read`): the
        terms are filed by head and full_name. Otherwise (SQLite, or only
        one-character words), the fast plan depends on what the planner cannot see: whether the
        matches are few, or many and spread over the name order, or many and bunched in it.
        - Some word starts fewer than RARE_BELOW terms (`_has_rare_word`): the matching
          patients are read through the terms, then sorted (`_matched_first`).
        - Every word is common ("silva"): names are walked in order and each is tested, as a
          list page is read, but at most WALK_BUDGET of them (`_walked`). The page is full
          there unless the matches bunch late in the order (a first name: every "Maria"
          sorts under M), and then the matches are read through the terms after all. Left to
          itself the planner walks in both cases, over the whole practice in the second.
        """
        words = _words(filters)
        values = _values(filters, words, after)
        if not words:
            read = _list_read(frozenset(values))
            return await read.rows(self.session, {**values, "limit": limit + 1})
        postgres = self.session.get_bind().dialect.name == "postgresql"
        if postgres and max(map(len, words)) >= 2:
            shape, word_values = _search_shape(words, frozenset(values), limit)
            return await _search_read(shape).rows(self.session, {**values, **word_values})
        if not await self._has_rare_word(words):
            walked = _walked(frozenset(values), words, limit)
            rows: list[PatientView] = list((await self.session.execute(walked, values)).scalars())
            if len(rows) > limit:
                return rows
        statement = _matched_first(_listed(frozenset(values)), words)
        statement = statement.order_by(Patient.full_name, Patient.id).limit(limit + 1)
        return list((await self.session.execute(statement, values)).scalars())

    async def _has_rare_word(self, words: list[str]) -> bool:
        """Whether some word starts fewer than RARE_BELOW of the practice's terms. Each count
        stops there (an index range of at most that many entries), and the first rare word
        ends the OR; the longest words, likelier rare, are counted first."""
        rare = [
            select(func.count())
            .select_from(
                select(PatientSearchTerm.patient_id)
                .where(
                    *_filed_under(PatientSearchTerm, word), *_starts_with(PatientSearchTerm, word)
                )
                .limit(RARE_BELOW)
                .subquery()
            )
            .scalar_subquery()
            < RARE_BELOW
            for word in map(_Word.written, sorted(words, key=len, reverse=True))
        ]
        return bool((await self.session.execute(select(or_(*rare)))).scalar_one())

    async def stream(self, filters: PatientFilters) -> AsyncIterator[Patient]:
        """Every matching patient from a server-side cursor, in list order (for exports)."""
        words = _words(filters)
        values = _values(filters, words, None)
        statement = _listed(frozenset(values))
        if words:
            statement = statement.where(Patient.id.in_(_matching(words)))
        statement = statement.order_by(Patient.full_name, Patient.id)
        rows = await self.session.stream_scalars(
            statement.execution_options(yield_per=1000), values
        )
        async for patient in rows:
            yield patient


# How many names, in order, a search of common words tests before it reads the matches
# through the terms instead: a name costs an index probe per word (~2,000: a few ms).
WALK_BUDGET = 2_000
# A word that starts fewer terms than this in the practice is rare: reading its patients
# through the terms (an index entry and a row lookup each) costs about what the walk may.
RARE_BELOW = 2 * WALK_BUDGET


def _words(filters: PatientFilters) -> list[str]:
    return query_words(filters.q) if filters.q else []


def _values(
    filters: PatientFilters, words: list[str], after: tuple[str, uuid.UUID] | None
) -> dict[str, object]:
    """The values of the filters given and of the cursor, by the names `_kept` and `_listed`
    bind them under (the search `words` apart)."""
    values: dict[str, object] = {
        name: value
        for name, value in (
            ("active", filters.active),
            ("birth_date_from", filters.birth_date_from),
            ("birth_date_to", filters.birth_date_to),
        )
        if value is not None
    }
    if filters.q and not words:  # no letter or digit ("%"): a substring scan, rare
        values["pattern"] = like_pattern(filters.q)
    if after is not None:
        values["after_name"], values["after_id"] = after
    return values


def _kept(given: frozenset[str], patient: Any) -> list[ColumnElement[bool]]:
    """The filters given, other than the search words and the cursor, on `patient` (the model
    or an alias of it); their values are bound by name at execution (`_values`)."""
    conditions: list[ColumnElement[bool]] = []
    if "active" in given:
        conditions.append(patient.active == bindparam("active", type_=Boolean()))
    if "birth_date_from" in given:
        conditions.append(patient.birth_date >= bindparam("birth_date_from", type_=Date()))
    if "birth_date_to" in given:
        conditions.append(patient.birth_date <= bindparam("birth_date_to", type_=Date()))
    return conditions


def _after(name: Any, patient_id: Any) -> ColumnElement[bool]:
    """After the cursor. A row-value comparison, which PostgreSQL answers from an index on
    (tenant_id, full_name, id); the equivalent OR form is applied as a filter over every
    earlier row."""
    cursor = bindparam("after_name", type_=Text()), bindparam("after_id", type_=Uuid())
    return tuple_(name, patient_id) > tuple_(*cursor)


def _listed(given: frozenset[str]) -> Select[Patient]:
    """The live patients the filters given keep, after the cursor if given (search words
    apart); values bound by name (`_values`)."""
    statement = select(Patient).where(Patient.deleted_at.is_(None), *_kept(given, Patient))
    if "pattern" in given:
        pattern = bindparam("pattern", type_=Text())
        statement = statement.where(Patient.search_text.like(pattern, escape="\\"))
    if "after_name" in given:
        statement = statement.where(_after(Patient.full_name, Patient.id))
    return statement


# What a page shows (and the tenant): not the search text, nor the deletion time, always empty.
_UNSHOWN = frozenset({"search_text", "deleted_at"})


def _page_columns(patient: Any = None) -> tuple[Any, ...]:
    return tuple(c for c in row_columns(Patient, patient) if c.key not in _UNSHOWN)


@functools.cache
def _list_read(given: frozenset[str]) -> HotRead:
    """A list page's read for the filters given, built once per combination."""
    return HotRead(
        _listed(given)
        .with_only_columns(*_page_columns())
        .order_by(Patient.full_name, Patient.id)
        .limit(bindparam("limit", type_=Integer()))
    )


@dataclass(frozen=True, slots=True)
class _SearchShape:
    """What a streamed search's SQL depends on; the words themselves are bound."""

    # The words of two characters or more, longest first: whether each is under one head.
    streamed: tuple[bool, ...]
    letters: int  # one-character words, tested on each candidate
    given: frozenset[str]  # the other filters and the cursor (`_values`)
    limit: int


@dataclass(frozen=True, slots=True)
class _Word:
    """A search word in a statement: the bounds of its prefix range, bound by name, and for
    a word of HEAD_LENGTH characters or more the one head it is filed under."""

    start: ColumnElement[str]
    end: ColumnElement[str]
    head: ColumnElement[str] | None

    @classmethod
    def written(cls, word: str) -> _Word:
        """The word written into the SQL, for a statement built for one query (SQLite, and
        queries of one-character words): its plan is always made for the word."""
        return cls(
            literal(word, literal_execute=True),
            literal(word + PREFIX_END, literal_execute=True),
            literal(head(word), literal_execute=True) if len(word) >= HEAD_LENGTH else None,
        )

    @classmethod
    def bound(cls, name: str, under_one_head: bool) -> _Word:
        return cls(
            bindparam(name, type_=Text()),
            bindparam(f"{name}_end", type_=Text()),
            bindparam(f"{name}_head", type_=Text()) if under_one_head else None,
        )


def _search_shape(
    words: list[str], given: frozenset[str], limit: int
) -> tuple[_SearchShape, dict[str, str]]:
    streamed = sorted((word for word in words if len(word) >= 2), key=lambda w: (-len(w), w))
    letters = [word for word in words if word not in streamed]
    values: dict[str, str] = {}
    for name, word in [(f"word_{i}", w) for i, w in enumerate(streamed)] + [
        (f"letter_{i}", w) for i, w in enumerate(letters)
    ]:
        values[name], values[f"{name}_end"] = word, word + PREFIX_END
        if len(word) >= HEAD_LENGTH:
            values[f"{name}_head"] = head(word)
    long = tuple(len(word) >= HEAD_LENGTH for word in streamed)
    return _SearchShape(long, len(letters), given, limit), values


@functools.lru_cache(maxsize=512)
def _search_read(shape: _SearchShape) -> HotRead:
    """A streamed search's read, built once per shape. Its plan is made for the words at each
    execution (PostgreSQL would otherwise settle on a generic plan from a prepared statement's
    sixth run, which cannot tell a common word from a rare one)."""
    streamed = [_Word.bound(f"word_{i}", one) for i, one in enumerate(shape.streamed)]
    letters = [_Word.bound(f"letter_{i}", False) for i in range(shape.letters)]
    return HotRead(_streamed(streamed, letters, shape.given, shape.limit), plan_each_time=True)


def _streamed(
    streamed: list[_Word], letters: list[_Word], given: frozenset[str], limit: int
) -> Select[Any]:
    """The page, from the words' terms in page order: the primary key of the terms is
    (tenant_id, head, full_name, patient_id, term), so the patients filed under one head come
    in (full_name, id) order from the cursor on, and a read stops after the page. A word of
    HEAD_LENGTH characters or more is under one head; a shorter one under the few heads that
    start with it (found one index probe each, `_heads`), read each in order and merged.
    One word of two characters or more: its patients are read in order and each tested for
    the one-character words and the other filters (`_single`). Several: leapfrogged
    (`_leapfrog`)."""
    if len(streamed) == 1:
        matched = _single(streamed[0], letters, given, limit)
    else:
        matched = _leapfrog(streamed, letters, given, limit)
    # Each match's row by its key (a lateral that cannot be flattened): at most a page of
    # probes, where a hash join would read the whole practice's patients.
    row = (
        select(Patient)
        .where(Patient.id == matched.c.patient_id, Patient.deleted_at.is_(None))
        .limit(_fixed(1))
        .lateral("patient")
    )
    patient = aliased(Patient, row)
    return (
        select(*_page_columns(patient))
        .select_from(matched)
        .join(row, true())
        .order_by(patient.full_name, patient.id)
        .limit(_fixed(limit + 1))
    )


def _single(word: _Word, letters: list[_Word], given: frozenset[str], limit: int) -> Subquery:
    if word.head is not None:
        return _stream(word.head, word, letters, given).limit(_fixed(limit + 1)).subquery("matched")
    heads = _heads(word, "heads")
    per_head = _stream(heads.c.head, word, letters, given).limit(_fixed(limit + 1)).lateral("hits")
    return (
        select(per_head.c.patient_id)
        .distinct()
        .select_from(heads)
        .join(per_head, true())
        .where(heads.c.head.is_not(None))
        .subquery("matched")
    )


def _leapfrog(
    streamed: list[_Word], letters: list[_Word], given: frozenset[str], limit: int
) -> Subquery:
    """The patients every word matches, intersected in page order by leapfrogging (a
    recursive walk): each step seeks, word after word, the first patient at or after the
    previous word's (an index probe per head, LIMIT 1). When the last word lands where the
    first did, every word has that patient: a match. Otherwise no patient before the last
    word's can match, and the next step starts there. The steps are about the matches plus
    the places where the words' patients stop overlapping, whatever the size of the practice
    or which word is commoner; the walk stops after a page of matches. One-character words
    and the other filters are tested on each candidate."""
    heads = {
        index: _heads(word, f"heads_{index}")
        for index, word in enumerate(streamed)
        if word.head is None
    }

    def seek(index: int, key: tuple[Any, Any] | None, after_key: ColumnElement[bool] | None) -> Any:
        """The first (full_name, patient_id) of word `index` at or after `key` (strictly after
        it where `after_key` holds)."""
        word, term = streamed[index], aliased(PatientSearchTerm)
        under = heads[index].c.head if word.head is None else word.head
        first = select(term.full_name, term.patient_id).where(
            term.head == under, *_starts_with(term, word)
        )
        if key is not None:
            position, at = tuple_(term.full_name, term.patient_id), tuple_(*key)
            first = first.where(position >= at)
            if after_key is not None:
                first = first.where(or_(position > at, ~after_key))
        # Correlated to the walk and the previous seeks, however deep it is nested.
        first = first.correlate_except(term)
        found = first.order_by(term.full_name, term.patient_id).limit(_fixed(1)).lateral()
        if index not in heads:
            return found
        return (
            select(found.c.full_name, found.c.patient_id)
            .select_from(heads[index])
            .join(found, true())
            .where(heads[index].c.head.is_not(None))
            .order_by(found.c.full_name, found.c.patient_id)
            .limit(_fixed(1))
            .lateral()
        )

    def step(
        key: tuple[Any, Any] | None,
        after_key: ColumnElement[bool] | None,
        found_before: Any = 0,
        base: Any = None,
    ) -> Select[Any]:
        """One round: from `key` (strictly after it where `after_key` holds)."""
        seeks = []
        for index in range(len(streamed)):
            found = seek(index, key, after_key if index == 0 else None)
            seeks.append(found)
            key = (found.c.full_name, found.c.patient_id)
        first, last = seeks[0], seeks[-1]
        hit = last.c.patient_id == first.c.patient_id
        tests = [hit]
        for word in letters:
            other = aliased(PatientSearchTerm)
            tests.append(
                exists().where(other.patient_id == last.c.patient_id, *_starts_with(other, word))
            )
        if kept := _kept(given, (patient := aliased(Patient))):
            tests.append(
                exists().where(patient.id == last.c.patient_id, patient.deleted_at.is_(None), *kept)
            )
        matched = and_(*tests)
        statement = select(
            last.c.full_name,
            last.c.patient_id,
            hit.label("hit"),
            matched.label("matched"),
            (found_before + case((matched, 1), else_=0)).label("found"),
        )
        joined: Any = first if base is None else base.join(first, true())
        for lateral in seeks[1:]:
            joined = joined.join(lateral, true())
        return statement.select_from(joined)

    cursor = (bindparam("after_name", type_=Text()), bindparam("after_id", type_=Uuid()))
    after = "after_name" in given
    walk = step(cursor if after else None, true() if after else None).cte("walk", recursive=True)
    onward = step((walk.c.full_name, walk.c.patient_id), walk.c.hit, walk.c.found, walk)
    walk = walk.union_all(onward.where(walk.c.found < _fixed(limit + 1)))
    return select(walk.c.patient_id).where(walk.c.matched).subquery("matched")


def _stream(
    under: ColumnElement[str], driver: _Word, others: list[_Word], given: frozenset[str]
) -> Select[str, uuid.UUID]:
    """The (full_name, patient_id) of the matches filed under the head `under`, in page order,
    each once (a patient may have several terms that start with the driver)."""
    hit = aliased(PatientSearchTerm, name="hit")
    statement = (
        select(hit.full_name, hit.patient_id)
        .distinct()
        .where(hit.head == under, *_starts_with(hit, driver))
        .order_by(hit.full_name, hit.patient_id)
    )
    if "after_name" in given:
        statement = statement.where(_after(hit.full_name, hit.patient_id))
    for word in others:
        other = aliased(PatientSearchTerm)
        statement = statement.where(
            exists().where(other.patient_id == hit.patient_id, *_starts_with(other, word))
        )
    if kept := _kept(given, (patient := aliased(Patient))):
        statement = statement.where(
            exists().where(patient.id == hit.patient_id, patient.deleted_at.is_(None), *kept)
        )
    return statement


def _heads(word: _Word, name: str) -> CTE:
    """The heads that start with `word` (shorter than HEAD_LENGTH), one index probe each."""
    first = aliased(PatientSearchTerm)
    start = select(func.min(first.head).label("head")).where(*_starts_with_head(first, word))
    heads = start.cte(name, recursive=True)
    following = aliased(PatientSearchTerm)
    after = (
        select(func.min(following.head))
        .where(following.head > heads.c.head, following.head < word.end)
        .scalar_subquery()
    )
    return heads.union_all(select(after).where(heads.c.head.is_not(None)))


def _matching(words: list[str]) -> Select[uuid.UUID]:
    """The patients with, for every word, a term that starts with it: one scan of the terms
    per word, joined on the patient, so the rarest word's few entries can drive."""
    terms = [aliased(PatientSearchTerm) for _ in words]
    statement = select(terms[0].patient_id)
    for other in terms[1:]:
        statement = statement.join(other, other.patient_id == terms[0].patient_id)
    for term, word in zip(terms, map(_Word.written, words), strict=True):
        statement = statement.where(*_filed_under(term, word), *_starts_with(term, word))
    return statement


def _matched_first(statement: Select[Patient], words: list[str]) -> Select[Patient]:
    """Keep the matches, computed first (MATERIALIZED): the planner then joins them to their
    patients and sorts, and cannot walk the name order testing each."""
    matched = _matching(words).cte("matched").prefix_with("MATERIALIZED")
    return statement.where(Patient.id.in_(select(matched.c.patient_id)))


def _walked(given: frozenset[str], words: list[str], limit: int) -> Select[Patient]:
    """The matches among the next WALK_BUDGET listed patients, in order: a full page from it
    is the right page."""
    walk = (_listed(given).order_by(Patient.full_name, Patient.id).limit(WALK_BUDGET)).subquery(
        "walk"
    )
    walked = aliased(Patient, walk)
    return (
        select(walked)
        .where(walked.id.in_(_matching(words)))
        .order_by(walked.full_name, walked.id)
        .limit(limit + 1)
    )


def _starts_with(term: type[PatientSearchTerm], word: _Word) -> tuple[ColumnElement[bool], ...]:
    """`term` starts with `word`, as a btree range on (tenant_id, term): LEAKPROOF
    comparisons, so an index condition under RLS too."""
    return term.term >= word.start, term.term < word.end


def _starts_with_head(
    term: type[PatientSearchTerm], word: _Word
) -> tuple[ColumnElement[bool], ...]:
    """`term.head` starts with `word`, as a range on (tenant_id, head)."""
    return term.head >= word.start, term.head < word.end


def _filed_under(term: type[PatientSearchTerm], word: _Word) -> tuple[ColumnElement[bool], ...]:
    """The heads `word`'s terms are filed under, for a range read on the primary key (the
    probes of one patient's terms test `term` alone, on (tenant_id, patient_id, term))."""
    if word.head is not None:
        return (term.head == word.head,)
    return _starts_with_head(term, word)


def _fixed(number: int) -> ColumnElement[int]:
    """A count written into the SQL, not bound: with `LIMIT $1` a generic plan (asyncpg
    prepares statements, PostgreSQL may keep one from their sixth run) cannot count on
    stopping early, and seeks each word's whole head (1 s at 1M patients for "ana silva")."""
    return literal_column(str(int(number)), Integer())
