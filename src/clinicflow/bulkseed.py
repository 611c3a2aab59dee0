"""Bulk seeding for benchmarks: many practices, patients and appointments in minutes.

`clinicflow seed --tenants N --patients-per-tenant M --appointments-per-patient K` lands here.
Rows are generated in Python (UUIDv7 ids, as the app makes them; varied names so that a common
name matches many patients and a rare one few; appointments that never overlap per professional)
and written in large chunks, with each patient's search terms (`patients.search`, as
PatientService keeps them):

- PostgreSQL: as the owner (migrations) connection, with asyncpg. RLS is FORCEd on tenant tables,
  and PostgreSQL refuses COPY into a table whose policy applies, so chunks are COPied into a
  temporary staging table and moved with one `INSERT ... SELECT` per tenant under
  `set_config('app.tenant_id', ...)`: the policy's WITH CHECK still vets every row.
- SQLite: multi-row INSERTs through SQLAlchemy Core.

Every login shares one password, hashed once (argon2 with the configured cost).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any, Protocol, TypeVar

from sqlalchemy import Table
from sqlalchemy.engine import make_url
from uuid_utils.compat import uuid7

from clinicflow.core.database import create_engine
from clinicflow.core.security import hasher_for
from clinicflow.core.settings import Settings
from clinicflow.core.text import normalize
from clinicflow.models import Base
from clinicflow.patients.search import head, search_terms, search_text

SEED_PASSWORD = "seed-clinic-2026!"  # noqa: S105  (benchmark data only; printed by the CLI)
CHUNK_ROWS = 20_000  # rows per COPY / INSERT batch: big enough to amortise, small in memory
DAY_START, DAY_END = 9 * 60, 18 * 60  # the default working hours (minutes after midnight, UTC)
DURATIONS = (30, 40, 45, 50, 60)  # minutes
GAPS = (0, 0, 0, 10, 15, 30)  # minutes between two appointments of one professional

Row = dict[str, Any]
T = TypeVar("T")


class SeedProgress(Protocol):
    """What the CLI shows: a bar per kind of row."""

    def start(self, kind: str, total: int) -> None: ...

    def advance(self, kind: str, rows: int) -> None: ...


class _Silent:
    def start(self, kind: str, total: int) -> None:
        return None

    def advance(self, kind: str, rows: int) -> None:
        return None


@dataclass(frozen=True, slots=True)
class BulkPlan:
    tenants: int
    patients_per_tenant: int
    appointments_per_patient: int
    professionals: int = 1  # per practice; they are the practice's owners (SPEC: clinicians)
    random_seed: int = 2026
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])  # keeps e-mails unique

    def __post_init__(self) -> None:
        if self.tenants < 1 or self.professionals < 1:
            raise ValueError("--tenants and --professionals must be at least 1")
        if self.patients_per_tenant < 0 or self.appointments_per_patient < 0:
            raise ValueError("patient and appointment counts cannot be negative")
        if self.appointments_per_patient and not self.patients_per_tenant:
            raise ValueError("appointments need patients")

    @property
    def appointments_per_tenant(self) -> int:
        return self.patients_per_tenant * self.appointments_per_patient


@dataclass(frozen=True, slots=True)
class Practice:
    tenant_id: uuid.UUID
    name: str
    owner_email: str
    assistant_email: str
    professional_ids: tuple[uuid.UUID, ...]
    professional_emails: tuple[str, ...]


@dataclass(slots=True)
class BulkResult:
    password: str
    practices: list[Practice] = field(default_factory=list)
    patients: int = 0
    appointments: int = 0
    seconds: float = 0.0


# Name pools. Weights follow a rough Zipf curve, so "silva" or "maria" match a large share of a
# practice while "quintanilha" or "ottoline" match a handful.
FIRST_NAMES = (
    "Maria", "José", "Ana", "João", "Antônio", "Francisca", "Carlos", "Paulo", "Pedro", "Lucas",
    "Luiz", "Marcos", "Luís", "Gabriel", "Rafael", "Daniel", "Marcelo", "Bruno", "Eduardo",
    "Felipe", "Juliana", "Adriana", "Márcia", "Fernanda", "Patrícia", "Aline", "Camila", "Amanda",
    "Bruna", "Letícia", "Emily", "James", "Olivia", "Noah", "Sophia", "Liam", "Isabella",
    "Charlotte", "Benjamin", "Amelia", "Henry", "Harper", "Theodore", "Evelyn", "Sebastian",
    "Chloé", "Zoë", "Björn", "Søren", "Ingrid", "Aurélie", "Matthias", "Ottoline", "Thaddeus",
    "Ximena", "Bartholomew", "Perpétua", "Eulália", "Zebedeu", "Wilhelmina",
)  # fmt: skip
SURNAMES = (
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
    "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes",
    "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques",
    "Machado", "Mendes", "Freitas", "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller",
    "Davis", "García", "Martínez", "Hernández", "Müller", "Schmidt", "Schneider", "Fischer",
    "Conceição", "Magalhães", "Guimarães", "Brandão", "Assunção", "Figueiredo", "Vasconcelos",
    "Quintanilha", "Albuquerque", "Wojciechowski", "Szczepański", "Nakamura", "Takahashi",
    "Okonkwo", "Abernathy", "Przybylski", "Zanetti", "Valadares", "Xavier", "Yamamoto",
)  # fmt: skip


def _zipf(count: int, exponent: float = 1.1) -> list[float]:
    return list(accumulate(1 / (rank**exponent) for rank in range(1, count + 1)))


_FIRST_WEIGHTS = _zipf(len(FIRST_NAMES))
_SURNAME_WEIGHTS = _zipf(len(SURNAMES))


class RowMaker:
    """Deterministic rows for one plan (the same seed gives the same names and times)."""

    def __init__(self, plan: BulkPlan, password_hash: str, now: datetime) -> None:
        self.plan = plan
        self.password_hash = password_hash
        self.now = now
        self.random = random.Random(plan.random_seed)  # noqa: S311  (test data, reproducible)

    def practice(self, index: int) -> tuple[Practice, Row, list[Row], list[Row]]:
        """The tenant row, its users (owners = professionals, one assistant), memberships."""
        tenant_id = uuid7()
        name = f"Seed Practice {index + 1:05d}"
        domain = f"p{index + 1:05d}-{self.plan.tag}.seed.example"
        emails = [f"owner@{domain}"]
        emails += [f"pro{number:03d}@{domain}" for number in range(2, self.plan.professionals + 1)]
        assistant = f"frontdesk@{domain}"
        users = [self._user(email, tenant_id) for email in [*emails, assistant]]
        roles = ["owner"] * len(emails) + ["assistant"]
        memberships = [
            {"tenant_id": tenant_id, "id": uuid7(), "user_id": user["id"], "role": role,
             "created_at": self.now, "updated_at": self.now}
            for user, role in zip(users, roles, strict=True)
        ]  # fmt: skip
        tenant = {
            "id": tenant_id, "name": name, "plan_id": None, "read_only": False,
            "timezone": "UTC", "settings": {}, "deleted_at": None,
            "created_at": self.now, "updated_at": self.now,
        }  # fmt: skip
        practice = Practice(
            tenant_id=tenant_id,
            name=name,
            owner_email=emails[0],
            assistant_email=assistant,
            professional_ids=tuple(user["id"] for user in users[: len(emails)]),
            professional_emails=tuple(emails),
        )
        return practice, tenant, users, memberships

    def _user(self, email: str, tenant_id: uuid.UUID) -> Row:
        local = email.split("@", 1)[0]
        return {
            "id": uuid7(), "email": email, "username": None,
            "full_name": f"{local.capitalize()} {self.random.choice(SURNAMES)}",
            "password_hash": self.password_hash, "is_platform_admin": False, "is_active": True,
            "email_verified_at": self.now, "failed_login_count": 0, "locked_until": None,
            "password_changed_at": None, "last_login_at": None, "default_tenant_id": tenant_id,
            "created_at": self.now, "updated_at": self.now,
        }  # fmt: skip

    def patients(self, tenant_id: uuid.UUID, count: int) -> Iterator[Row]:
        pick = self.random.choices
        rand = self.random.random
        randint = self.random.randint
        for serial in range(count):
            first = pick(FIRST_NAMES, cum_weights=_FIRST_WEIGHTS)[0]
            last = pick(SURNAMES, cum_weights=_SURNAME_WEIGHTS, k=2)
            full_name = f"{first} {last[0]} {last[1]}" if rand() < 0.4 else f"{first} {last[1]}"
            email = (
                f"{normalize(first)}.{normalize(last[1])}{serial}@mail.example"
                if rand() < 0.7
                else None
            )
            phone = f"+55 11 9{randint(1000, 9999)}-{randint(1000, 9999)}" if rand() < 0.8 else None
            document = f"{randint(0, 99_999_999_999):011d}" if rand() < 0.6 else None
            yield {
                "tenant_id": tenant_id, "id": uuid7(), "full_name": full_name,
                "birth_date": date(1930, 1, 1) + timedelta(days=randint(0, 34_000)),
                "email": email, "phone": phone, "document": document, "notes": None,
                "custom_fields": {}, "active": rand() < 0.97, "deleted_at": None,
                "search_text": search_text(full_name, email, phone, document),
                "created_at": self.now, "updated_at": self.now,
            }  # fmt: skip

    def appointments(
        self, tenant_id: uuid.UUID, professionals: Sequence[uuid.UUID], patients: list[uuid.UUID]
    ) -> Iterator[Row]:
        """Each patient `appointments_per_patient` times, shuffled over the professionals.

        One professional's appointments follow each other on weekdays inside working hours
        (30-60 minutes, sometimes a gap), half before today and half after, so they never
        overlap and an agenda week looks like a working week."""
        booked = patients * self.plan.appointments_per_patient
        self.random.shuffle(booked)
        share, extra = divmod(len(booked), len(professionals))
        taken = 0
        for number, professional in enumerate(professionals):
            count = share + (1 if number < extra else 0)
            slots = self._slots(count)
            for patient_id, (start, end) in zip(booked[taken : taken + count], slots, strict=True):
                yield self._appointment(tenant_id, professional, patient_id, start, end)
            taken += count

    def _slots(self, count: int) -> Iterator[tuple[datetime, datetime]]:
        """Half on the weekdays before today, half on those after it: today is skipped, so the
        split does not depend on the hour the seed runs at (late in the day, today's slots
        would all be past)."""
        today = datetime(self.now.year, self.now.month, self.now.day, tzinfo=UTC)
        past = count // 2
        yield from self._walk(today - timedelta(days=1), past, timedelta(days=-1))
        yield from self._walk(today + timedelta(days=1), count - past, timedelta(days=1))

    def _walk(
        self, day: datetime, count: int, step: timedelta
    ) -> Iterator[tuple[datetime, datetime]]:
        """`count` slots, day after day from `day` in the direction of `step`, weekdays only."""
        made = 0
        choice = self.random.choice
        while made < count:
            if day.weekday() < 5:
                minute = DAY_START + choice(GAPS)
                while made < count:
                    length = choice(DURATIONS)
                    if minute + length > DAY_END:
                        break
                    start = day + timedelta(minutes=minute)
                    yield start, start + timedelta(minutes=length)
                    made += 1
                    minute += length + choice(GAPS)
            day += step

    def _appointment(
        self,
        tenant_id: uuid.UUID,
        professional: uuid.UUID,
        patient_id: uuid.UUID,
        start: datetime,
        end: datetime,
    ) -> Row:
        roll = self.random.random()
        if end <= self.now:
            status = "completed" if roll < 0.85 else "no_show" if roll < 0.92 else "cancelled"
        else:
            status = "scheduled" if roll < 0.6 else "confirmed"
        return {
            "tenant_id": tenant_id, "id": uuid7(), "patient_id": patient_id,
            "professional_id": professional, "start_at": start, "end_at": end,
            "status": status, "location": None, "notes": None, "allow_overlap": False,
            "series_id": None, "created_by": professional,
            "created_at": self.now, "updated_at": self.now,
        }  # fmt: skip


def terms_of(patients: list[Row]) -> list[Row]:
    """The search terms of these patients (as PatientService keeps them)."""
    return [
        {
            "tenant_id": row["tenant_id"],
            "head": head(term),
            "full_name": row["full_name"],
            "patient_id": row["id"],
            "term": term,
        }
        for row in patients
        for term in search_terms(row["full_name"], row["email"], row["phone"], row["document"])
    ]


def with_terms(batches: Iterable[list[Row]]) -> Iterator[tuple[list[Row], list[Row]]]:
    for batch in batches:
        yield batch, terms_of(batch)


def chunks(rows: Iterable[Row], size: int = CHUNK_ROWS) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Writer(Protocol):
    async def global_rows(self, table: str, rows: list[Row]) -> None: ...

    async def tenant_rows(self, table: str, tenant_id: uuid.UUID, rows: list[Row]) -> None: ...

    async def close(self) -> None: ...


class _PostgresWriter:
    """asyncpg as the owner role: COPY into temporary staging, then one INSERT per tenant."""

    def __init__(self, connection: Any) -> None:  # asyncpg ships no type stubs
        self.connection = connection
        self.staged: set[str] = set()

    @classmethod
    async def connect(cls, url: str) -> _PostgresWriter:
        import asyncpg  # type: ignore[import-untyped]

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)
        # Larger sort buffers make the search-term and exclusion indexes cheaper to fill; this
        # is reseedable test data, so a crash losing the last commits is acceptable.
        await connection.execute(
            "SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'; "
            "SET synchronous_commit = off"
        )
        return cls(connection)

    async def global_rows(self, table: str, rows: list[Row]) -> None:
        columns = _columns(table)
        await self.connection.copy_records_to_table(
            table, records=_records(table, rows), columns=columns
        )

    async def tenant_rows(self, table: str, tenant_id: uuid.UUID, rows: list[Row]) -> None:
        stage = f"seed_stage_{table}"
        if table not in self.staged:
            await self.connection.execute(
                f"CREATE TEMP TABLE {stage} (LIKE {table} INCLUDING DEFAULTS)"
            )
            self.staged.add(table)
        columns = _columns(table)
        names = ", ".join(columns)
        async with self.connection.transaction():
            await self.connection.copy_records_to_table(
                stage, records=_records(table, rows), columns=columns
            )
            await self.connection.execute(
                "SELECT set_config('app.tenant_id', $1, true)", str(tenant_id)
            )
            await self.connection.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage}"  # noqa: S608
            )
            await self.connection.execute(f"TRUNCATE {stage}")

    async def close(self) -> None:
        await self.connection.close()


class _SqlAlchemyWriter:
    """SQLite (and anything else): Core multi-row INSERTs, one transaction per batch."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, pool_size=1)

    async def global_rows(self, table: str, rows: list[Row]) -> None:
        await self._insert(table, rows)

    async def tenant_rows(self, table: str, tenant_id: uuid.UUID, rows: list[Row]) -> None:
        await self._insert(table, rows)

    async def _insert(self, table: str, rows: list[Row]) -> None:
        target: Table = Base.metadata.tables[table]
        async with self.engine.begin() as connection:
            # SQLite allows at most 32,766 bound values per statement.
            step = max(1, 32_000 // len(target.columns))
            for offset in range(0, len(rows), step):
                await connection.execute(target.insert().values(rows[offset : offset + step]))

    async def close(self) -> None:
        await self.engine.dispose()


def _columns(table: str) -> list[str]:
    return [column.name for column in Base.metadata.tables[table].columns]


_JSON_COLUMNS = {"settings", "custom_fields"}


def _records(table: str, rows: list[Row]) -> list[tuple[Any, ...]]:
    columns = _columns(table)
    return [
        tuple(json.dumps(row[name]) if name in _JSON_COLUMNS else row[name] for name in columns)
        for row in rows
    ]


async def seed_bulk(
    settings: Settings, plan: BulkPlan, progress: SeedProgress | None = None
) -> BulkResult:
    """Write the plan's practices; returns their logins (all share `SEED_PASSWORD`)."""
    shown = progress or _Silent()
    started = time.perf_counter()
    password_hash = await hasher_for(settings).hash(SEED_PASSWORD)  # once per seed
    maker = RowMaker(plan, password_hash, datetime.now(UTC))
    writer: _Writer
    if settings.is_postgres:
        writer = await _PostgresWriter.connect(settings.migrations_url)
    else:
        writer = _SqlAlchemyWriter(settings.database_url)
    result = BulkResult(password=SEED_PASSWORD)
    shown.start("practices", plan.tenants)
    shown.start("patients", plan.tenants * plan.patients_per_tenant)
    shown.start("appointments", plan.tenants * plan.appointments_per_tenant)
    try:
        for index in range(plan.tenants):
            practice, tenant, users, memberships = maker.practice(index)
            await writer.global_rows("tenants", [tenant])
            await writer.global_rows("users", users)
            await writer.tenant_rows("memberships", practice.tenant_id, memberships)
            patient_ids: list[uuid.UUID] = []
            made = maker.patients(practice.tenant_id, plan.patients_per_tenant)
            async for batch, terms in _prefetched(with_terms(chunks(made))):
                await writer.tenant_rows("patients", practice.tenant_id, batch)
                await writer.tenant_rows("patient_search_terms", practice.tenant_id, terms)
                patient_ids += [row["id"] for row in batch]
                shown.advance("patients", len(batch))
            if plan.appointments_per_patient:
                rows = maker.appointments(
                    practice.tenant_id, practice.professional_ids, patient_ids
                )
                async for batch in _prefetched(chunks(rows)):
                    await writer.tenant_rows("appointments", practice.tenant_id, batch)
                    shown.advance("appointments", len(batch))
            result.practices.append(practice)
            result.patients += len(patient_ids)
            result.appointments += plan.appointments_per_tenant
            shown.advance("practices", 1)
    finally:
        await writer.close()
    result.seconds = time.perf_counter() - started
    return result


async def _prefetched(batches: Iterator[T]) -> AsyncIterator[T]:
    """Yield batches, making the next one in a thread while the database stores this one."""
    pending = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
    while True:
        batch = await pending
        if batch is None:
            return
        pending = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
        yield batch
