"""A short-lived, per-process cache of verified callers, keyed by the credential presented
(bearer token or API key) and the practice asked for. A hit skips the token's signature check
and the queries that vet it (session and user, membership and practice; or key, practice and
plan), which were most of an authenticated read's cost.

Revocation still takes effect:
- in the process that made the change, at its commit: a transaction that changes or deletes a
  user, a login session, a membership, a practice, a plan or an API key drops the entries that
  depend on them (the session events below), so logout, a password change, a role change, a
  revoked key or read-only mode answer at once there;
- in every other process within `AUTH_CACHE_SECONDS` (at most 5), when its entry expires.

Inserts invalidate nothing: a new login session or membership is not in anyone's entry.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from clinicflow.apikeys.models import ApiKey
from clinicflow.auth.models import AuthSession
from clinicflow.tenants.models import Membership, Plan, Tenant
from clinicflow.users.models import User

# Execution option of a bulk UPDATE that changes nothing a principal is made of (a session's
# last_used_at); any other bulk UPDATE or DELETE of these tables empties the cache at commit.
PRINCIPALS_UNCHANGED = "principals_unchanged"
_TABLES = frozenset(
    model.__tablename__ for model in (ApiKey, AuthSession, Membership, Plan, Tenant, User)
)
_CHANGES_KEY = "principal_changes"
_MAX_ENTRIES = 10_000

V = TypeVar("V")
# What was presented, as structure (never text a caller could forge into another kind): a
# bearer token with the practice asked for, or an API key.
CacheKey = tuple[Literal["token", "key"], str, uuid.UUID | None]


@dataclass(frozen=True, slots=True)
class Basis:
    """The rows an entry was vetted against: a change to any of them drops it."""

    tenant_id: uuid.UUID | None
    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    basis: Basis
    expires: float  # time.monotonic()


@dataclass(slots=True)
class Changes:
    """What one transaction changed that entries depend on."""

    users: set[uuid.UUID] = field(default_factory=set)
    sessions: set[uuid.UUID] = field(default_factory=set)
    tenants: set[uuid.UUID] = field(default_factory=set)
    api_keys: set[uuid.UUID] = field(default_factory=set)
    everything: bool = False

    def touch(self, basis: Basis) -> bool:
        return (
            basis.session_id in self.sessions
            or basis.user_id in self.users
            or basis.tenant_id in self.tenants
            or basis.api_key_id in self.api_keys
        )


class PrincipalCache(Generic[V]):
    def __init__(self) -> None:
        self._entries: dict[CacheKey, _Entry[V]] = {}
        self._vetting: dict[CacheKey, asyncio.Event] = {}
        # Counts the forgets: a vetting that read the database before one must not store
        # what it read (a logout committed meanwhile in this process would be undone).
        self.generation = 0

    async def wait_for_vetting(self, key: CacheKey) -> bool:
        """Wait until the request of this process vetting `key` is done, if one is: when an
        entry expired under load, every request in flight with that credential missed at once
        and vetted it again (two queries each). True if this waited; the caller then looks in
        the cache again. Whatever the outcome (refused, failed, not remembered), each waits
        once and then vets on its own, in parallel: never in a queue behind a slow vetting."""
        vetting = self._vetting.get(key)
        if vetting is None:
            return False
        await vetting.wait()
        return True

    @contextmanager
    def vetting(self, key: CacheKey) -> Iterator[None]:
        """Marks `key` as being vetted by this request, for `wait_for_vetting`."""
        first = key not in self._vetting
        if first:
            self._vetting[key] = asyncio.Event()
        try:
            yield
        finally:
            if first:
                self._vetting.pop(key).set()

    def get(self, key: CacheKey) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            del self._entries[key]
            return None
        return entry.value

    def put(
        self, key: CacheKey, value: V, basis: Basis, *, seconds: float, generation: int
    ) -> None:
        """Remember `value`, vetted from what the database said at `generation`."""
        if seconds <= 0 or generation != self.generation:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()  # simpler than LRU, and a full cache is refilled in seconds
        self._entries[key] = _Entry(value, basis, time.monotonic() + seconds)

    def forget(self, changes: Changes) -> None:
        self.generation += 1
        if changes.everything:
            self._entries.clear()
            return
        stale = [key for key, entry in self._entries.items() if changes.touch(entry.basis)]
        for key in stale:
            del self._entries[key]


# One per process: every app in the process (tests run several) shares its sessions' events.
principals: PrincipalCache[object] = PrincipalCache()


def _changes(session: Session) -> Changes:
    changes: Changes = session.info.setdefault(_CHANGES_KEY, Changes())
    return changes


@event.listens_for(Session, "after_flush")
def _note_changed_rows(session: Session, flush_context: object) -> None:
    for row in (*session.dirty, *session.deleted):
        if isinstance(row, User):
            _changes(session).users.add(row.id)
        elif isinstance(row, AuthSession):
            _changes(session).sessions.add(row.id)
        elif isinstance(row, Membership):
            _changes(session).users.add(row.user_id)
        elif isinstance(row, Tenant):
            _changes(session).tenants.add(row.id)
        elif isinstance(row, ApiKey):
            _changes(session).api_keys.add(row.id)
        elif isinstance(row, Plan):
            _changes(session).everything = True  # which practices are on it is not at hand


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_writes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    if state.execution_options.get(PRINCIPALS_UNCHANGED, False):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _TABLES:
        _changes(state.session).everything = True


@event.listens_for(Session, "after_commit")
def _forget_changed(session: Session) -> None:
    # Changes of a rolled-back transaction are kept until the session's next commit: dropping
    # a little more than needed costs a query; dropping too little would serve a revoked caller.
    changes = session.info.pop(_CHANGES_KEY, None)
    if changes is not None:
        principals.forget(changes)
