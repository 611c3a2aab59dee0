"""Queries of patients (tenant-scoped; soft-deleted rows are never returned)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Select, delete, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clinicflow.patients.models import Patient, PatientSearchTerm
from clinicflow.patients.search import PREFIX_END, like_pattern, query_words


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

    def add_terms(self, patient_id: uuid.UUID, terms: set[str]) -> None:
        """The search terms of a patient written just now (see `patients.search`)."""
        self.session.add_all(PatientSearchTerm(patient_id=patient_id, term=t) for t in terms)

    async def replace_terms(self, patient_id: uuid.UUID, terms: set[str]) -> None:
        """Make the patient's stored terms exactly `terms`, touching only what changed."""
        stored = set(
            (
                await self.session.execute(
                    select(PatientSearchTerm.term).where(PatientSearchTerm.patient_id == patient_id)
                )
            ).scalars()
        )
        if stale := stored - terms:
            await self.session.execute(
                delete(PatientSearchTerm).where(
                    PatientSearchTerm.patient_id == patient_id, PatientSearchTerm.term.in_(stale)
                )
            )
        self.add_terms(patient_id, terms - stored)

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

    async def count_active(self) -> int:
        statement = select(func.count()).select_from(Patient).where(Patient.deleted_at.is_(None))
        return (await self.session.execute(statement)).scalar_one()

    async def page(
        self, filters: PatientFilters, limit: int, after: tuple[str, uuid.UUID] | None
    ) -> list[Patient]:
        """Ordered by (full_name, id), keyset after the cursor; one extra row for `more`.

        With search words, the fast plan depends on what the planner cannot see: whether the
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
        if words and not await self._has_rare_word(words):
            walked = list(
                (await self.session.execute(_walked(filters, words, limit, after))).scalars()
            )
            if len(walked) > limit:
                return walked
        statement = _listed(filters, after)
        if words:
            statement = _matched_first(statement, words)
        statement = statement.order_by(Patient.full_name, Patient.id).limit(limit + 1)
        return list((await self.session.execute(statement)).scalars())

    async def _has_rare_word(self, words: list[str]) -> bool:
        """Whether some word starts fewer than RARE_BELOW of the practice's terms. Each count
        stops there (an index range of at most that many entries), and the first rare word
        ends the OR; the longest words, likelier rare, are counted first."""
        rare = [
            select(func.count())
            .select_from(
                select(PatientSearchTerm.patient_id)
                .where(*_starts_with(PatientSearchTerm, word))
                .limit(RARE_BELOW)
                .subquery()
            )
            .scalar_subquery()
            < RARE_BELOW
            for word in sorted(words, key=len, reverse=True)
        ]
        return bool((await self.session.execute(select(or_(*rare)))).scalar_one())

    async def stream(self, filters: PatientFilters) -> AsyncIterator[Patient]:
        """Every matching patient from a server-side cursor, in list order (for exports)."""
        statement = _filtered(filters).order_by(Patient.full_name, Patient.id)
        rows = await self.session.stream_scalars(statement.execution_options(yield_per=1000))
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


def _listed(filters: PatientFilters, after: tuple[str, uuid.UUID] | None) -> Select[Patient]:
    """The live patients the filters keep, after the cursor (search words apart)."""
    statement = select(Patient).where(Patient.deleted_at.is_(None))
    if filters.q and not _words(filters):  # no letter or digit ("%"): a substring scan, rare
        statement = statement.where(Patient.search_text.like(like_pattern(filters.q), escape="\\"))
    if filters.active is not None:
        statement = statement.where(Patient.active.is_(filters.active))
    if filters.birth_date_from:
        statement = statement.where(Patient.birth_date >= filters.birth_date_from)
    if filters.birth_date_to:
        statement = statement.where(Patient.birth_date <= filters.birth_date_to)
    if after is not None:
        name, last_id = after
        # A row-value comparison, which PostgreSQL answers from the (tenant_id, full_name, id)
        # index; the equivalent OR form is applied as a filter over every earlier row.
        statement = statement.where(tuple_(Patient.full_name, Patient.id) > tuple_(name, last_id))
    return statement


def _filtered(filters: PatientFilters) -> Select[Patient]:
    """Every match, for a plan of the whole result (exports)."""
    statement = _listed(filters, None)
    if words := _words(filters):
        statement = statement.where(Patient.id.in_(_matching(words)))
    return statement


def _matching(words: list[str]) -> Select[uuid.UUID]:
    """The patients with, for every word, a term that starts with it: one scan of the terms
    per word, joined on the patient, so the rarest word's few entries can drive."""
    terms = [aliased(PatientSearchTerm) for _ in words]
    statement = select(terms[0].patient_id)
    for other in terms[1:]:
        statement = statement.join(other, other.patient_id == terms[0].patient_id)
    for term, word in zip(terms, words, strict=True):
        statement = statement.where(*_starts_with(term, word))
    return statement


def _matched_first(statement: Select[Patient], words: list[str]) -> Select[Patient]:
    """Keep the matches, computed first (MATERIALIZED): the planner then joins them to their
    patients and sorts, and cannot walk the name order testing each."""
    matched = _matching(words).cte("matched").prefix_with("MATERIALIZED")
    return statement.where(Patient.id.in_(select(matched.c.patient_id)))


def _walked(
    filters: PatientFilters, words: list[str], limit: int, after: tuple[str, uuid.UUID] | None
) -> Select[Patient]:
    """The matches among the next WALK_BUDGET listed patients, in order: a full page from it
    is the right page."""
    walk = (
        _listed(filters, after).order_by(Patient.full_name, Patient.id).limit(WALK_BUDGET)
    ).subquery("walk")
    walked = aliased(Patient, walk)
    return (
        select(walked)
        .where(walked.id.in_(_matching(words)))
        .order_by(walked.full_name, walked.id)
        .limit(limit + 1)
    )


def _starts_with(term: type[PatientSearchTerm], word: str) -> tuple[ColumnElement[bool], ...]:
    """`term` starts with `word`, as a btree range on (tenant_id, term): LEAKPROOF
    comparisons, so an index condition under RLS too.

    The bounds are literals (`word` holds letters and digits only, and SQLAlchemy quotes it
    anyway): a prepared statement's generic plan cannot tell a common word from a rare one."""
    return (
        term.term >= literal(word, literal_execute=True),
        term.term < literal(word + PREFIX_END, literal_execute=True),
    )
