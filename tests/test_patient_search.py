"""Patient search `q`: every query word must start a word of the patient's name, e-mail, phone
or document; the terms follow every change; deleted and other practices' patients are never
found; and on PostgreSQL the search is an index range under RLS, not a scan of the practice."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from bench.queries import capture, recording
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from clinicflow.audit.service import Actor
from clinicflow.bulkseed import BulkPlan, seed_bulk
from clinicflow.core.database import create_database
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.patients import repository
from clinicflow.patients.models import PatientSearchTerm
from clinicflow.patients.repository import PatientFilters, PatientRepository
from clinicflow.patients.service import PatientService
from tests.conftest import PgTestDatabase, make_test_settings
from tests.factories import make_member
from tests.statements import statements_sent

PATIENTS = "/api/v1/patients"
# An index of the terms table read as a range of one practice's terms: tenant_id leads.
TERM_RANGE = re.compile(
    r"Scan (?:using |on )(?:pk_patient_search_terms|ix_patient_search_terms\w*)[^\n]*\n"
    r"\s*Index Cond: \(\(tenant_id = '[0-9a-f-]+'::uuid\) AND (?:\(head = '\w+'::text\) AND )?"
    r"\(term >= '\w+'::text\) AND"
)
# The entries a plan reads from the terms filed in page order (a search's driving word).
STREAM = re.compile(
    r"Index Only Scan using pk_patient_search_terms on patient_search_terms hit"
    r"[^\n]*rows=(\d+) loops=(\d+)"
)
# The rows a plan reads from the patients' name index (walking the list order).
NAME_WALK = re.compile(
    r"Index Scan using ix_patients_tenant_id_full_name_id on patients[^\n]*rows=(\d+) loops=1"
)


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await client.post(PATIENTS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def search_pages(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> list[list[str]]:
    """The names on every page of a listing, two a page, following `next_cursor`."""
    seen: list[list[str]] = []
    params = {**params, "limit": 2}
    while True:
        page = (await client.get(PATIENTS, params=params, headers=headers)).json()
        seen.append([item["full_name"] for item in page["items"]])
        if page["next_cursor"] is None:
            return seen
        params["cursor"] = page["next_cursor"]


async def found(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> list[str]:
    response = await client.get(PATIENTS, params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    return [item["full_name"] for item in response.json()["items"]]


async def terms_of(db: FastAPI, tenant_id: uuid.UUID | None, patient_id: str) -> set[str]:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, tenant_id)
        rows = await session.execute(
            select(PatientSearchTerm.term).where(
                PatientSearchTerm.patient_id == uuid.UUID(patient_id)
            )
        )
        return set(rows.scalars())


async def test_every_query_word_must_start_a_word_of_the_patient(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    for name in ("Ana Lima", "Ana Souza", "Bruno Silva", "Marisilva Costa"):
        await create(client, owner.headers, full_name=name)
    await create(client, owner.headers, full_name="Carla Dias", email="carla@lima.example")

    assert await found(client, owner.headers, "sil") == ["Bruno Silva"]  # not inside a word
    assert await found(client, owner.headers, "ana lim") == ["Ana Lima"]
    assert await found(client, owner.headers, "LIM ANA") == ["Ana Lima"]  # any order
    assert await found(client, owner.headers, "ana") == ["Ana Lima", "Ana Souza"]
    assert await found(client, owner.headers, "lima") == ["Ana Lima", "Carla Dias"]
    assert await found(client, owner.headers, "carla lima") == ["Carla Dias"]  # across fields
    assert await found(client, owner.headers, "ana silva") == []  # every word must match
    assert await found(client, owner.headers, "ima") == []


async def test_a_search_pages_in_name_order_with_the_cursor(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    for name in ("Eva Silva", "Ana Silva", "Caio Silva", "Bia Souza", "Dora Silva"):
        await create(client, owner.headers, full_name=name)
    seen: list[str] = []
    params: dict[str, Any] = {"q": "silva", "limit": 2}
    while True:
        page = (await client.get(PATIENTS, params=params, headers=owner.headers)).json()
        seen += [item["full_name"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ["Ana Silva", "Caio Silva", "Dora Silva", "Eva Silva"]


async def test_a_search_is_planned_for_its_words_from_its_transactions_begin(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """The setting that has PostgreSQL plan a search for its words (not a generic plan) goes
    with the transaction's BEGIN and the tenant's: no round trip of its own."""
    owner = await make_member(db, role="owner")
    await create(client, owner.headers, full_name="Ana Silva")
    assert await found(client, owner.headers, "silva") == ["Ana Silva"]  # caller remembered
    with statements_sent(db) as sent:
        assert await found(client, owner.headers, "silva") == ["Ana Silva"]
        await asyncio.sleep(0.05)  # the driver reports its own statements a moment later
    assert [statement for statement in sent if "plan_cache_mode" in statement] == [
        f"BEGIN; SELECT set_config('app.tenant_id', '{owner.tenant_id}', true); "
        "SET LOCAL plan_cache_mode = force_custom_plan;"
    ]


async def test_a_search_in_a_begun_transaction_sets_its_planning_once(db: FastAPI) -> None:
    """Where the transaction began before the search, the setting is sent on its own, once
    for the transaction however many searches it runs."""
    owner = await make_member(db, role="owner")
    with statements_sent(db) as sent:
        async with db.state.database.sessionmaker() as session:
            await set_session_tenant(session, owner.tenant_id)
            await session.execute(text("SELECT 1"))
            patients = PatientRepository(session)
            for word in ("silva", "lima"):
                assert await patients.page(PatientFilters(q=word), 10, None) == []
            await session.commit()
        await asyncio.sleep(0.05)
    assert [statement for statement in sent if "plan_cache_mode" in statement] == [
        "SET LOCAL plan_cache_mode = force_custom_plan"
    ]


async def test_an_update_changes_what_the_patient_is_found_by(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = await create(client, owner.headers, full_name="Ana Lima", phone="+55 11 91234-5678")
    assert await found(client, owner.headers, "91234") == ["Ana Lima"]
    path = f"{PATIENTS}/{patient}"
    renamed = await client.patch(
        path, json={"full_name": "Ana Prado", "phone": "21 3333-4444"}, headers=owner.headers
    )
    assert renamed.status_code == 200
    assert await found(client, owner.headers, "lima") == []
    assert await found(client, owner.headers, "91234") == []
    assert await found(client, owner.headers, "ana prado") == ["Ana Prado"]
    assert await found(client, owner.headers, "2133334444") == ["Ana Prado"]
    # A change elsewhere (notes) keeps the terms; clearing the phone drops its terms.
    await client.patch(path, json={"notes": "mornings"}, headers=owner.headers)
    assert await found(client, owner.headers, "3333") == ["Ana Prado"]
    await client.patch(path, json={"phone": None}, headers=owner.headers)
    assert await found(client, owner.headers, "3333") == []
    assert await terms_of(db, owner.tenant_id, patient) == {"ana", "prado"}


async def test_a_deleted_patient_is_never_found_and_keeps_no_terms(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = await create(client, owner.headers, full_name="Ana Lima", email="ana@example.com")
    await create(client, owner.headers, full_name="Ana Souza")
    assert (await client.delete(f"{PATIENTS}/{patient}", headers=owner.headers)).status_code == 204
    assert await found(client, owner.headers, "lima") == []
    assert await found(client, owner.headers, "ana") == ["Ana Souza"]
    assert await found(client, owner.headers, "@") == []  # the substring fallback too
    assert await terms_of(db, owner.tenant_id, patient) == set()


async def test_another_practices_patient_with_the_same_name_is_never_found(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, stranger = await make_member(db, role="owner"), await make_member(db, role="owner")
    ours = await create(client, owner.headers, full_name="Ana Lima")
    theirs = await create(client, stranger.headers, full_name="Ana Lima")
    listed = await client.get(PATIENTS, params={"q": "ana lima"}, headers=owner.headers)
    assert [item["id"] for item in listed.json()["items"]] == [ours]
    # The application scope applies to the terms table (no tenant: nothing; B's are B's only).
    assert await terms_of(db, owner.tenant_id, theirs) == set()
    assert await terms_of(db, None, ours) == set()
    assert await terms_of(db, stranger.tenant_id, theirs) == {"ana", "lima"}


async def test_the_terms_table_has_rls_for_the_app_role(
    client: httpx.AsyncClient, db: FastAPI, pg_database: PgTestDatabase, admin_engine: AsyncEngine
) -> None:
    owner, stranger = await make_member(db, role="owner"), await make_member(db, role="owner")
    await create(client, owner.headers, full_name="Ana Lima")
    await create(client, stranger.headers, full_name="Ana Lima")
    async with admin_engine.connect() as connection:
        stored = await connection.scalar(text("SELECT count(*) FROM patient_search_terms"))
    assert stored == 4
    connection = await asyncpg.connect(_dsn(pg_database.app_url))
    try:
        async with connection.transaction():
            assert await connection.fetchval("SELECT count(*) FROM patient_search_terms") == 0
        async with connection.transaction():
            await connection.execute(
                "SELECT set_config('app.tenant_id', $1, true)", str(owner.tenant_id)
            )
            tenants = await connection.fetch("SELECT DISTINCT tenant_id FROM patient_search_terms")
    finally:
        await connection.close()
    assert [row["tenant_id"] for row in tenants] == [owner.tenant_id]


async def test_a_rare_word_is_an_index_range_on_the_terms_under_rls(
    db: FastAPI, pg_database: PgTestDatabase, admin_engine: AsyncEngine
) -> None:
    """EXPLAIN as the app role with the tenant set: the range leads with tenant_id on the
    terms' index, and no step reads the whole practice (as LIKE '%q%' under RLS did)."""
    settings = make_test_settings(
        database_url=pg_database.app_url, migrations_database_url=pg_database.owner_url
    )
    seeded = await seed_bulk(settings, BulkPlan(2, 3000, 0))
    practice = seeded.practices[0]
    async with admin_engine.begin() as connection:  # committed: statistics as autovacuum's
        await connection.execute(text("ANALYZE patients, patient_search_terms"))
    database = create_database(settings)
    try:
        query = await capture(
            database, practice.tenant_id, "search_rare",
            lambda s: PatientRepository(s).page(PatientFilters(q="ottoline przybylski"), 50, None),
            "patients",
        )  # fmt: skip
    finally:
        await database.dispose()
    connection = await asyncpg.connect(_dsn(pg_database.app_url))
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT set_config('app.tenant_id', $1, true)", str(practice.tenant_id)
            )
            rows = await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {query.sql}", *query.args)
    finally:
        await connection.close()
    plan = "\n".join(row[0] for row in rows)
    assert "Seq Scan" not in plan, plan
    assert "Bitmap Heap Scan on patients" not in plan, plan
    assert TERM_RANGE.search(plan), plan


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


async def test_each_plan_of_a_search_gives_the_same_pages(
    client: httpx.AsyncClient, db: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rare word (read through the terms), common word found within the walk, common word
    bunched late in name order (the walk gives up, then the terms): one answer."""
    owner = await make_member(db, role="owner")
    for name in ("Ana Lima", "Bia Lima", "Caio Souza", "Dora Lima", "Eva Souza", "Zeca Lima"):
        await create(client, owner.headers, full_name=name)
    await create(client, owner.headers, full_name="Zilda Rocha", email="zilda@lima.example")

    async def pages(q: str) -> list[list[str]]:
        return await search_pages(client, owner.headers, {"q": q})

    expected = {
        "lima": [["Ana Lima", "Bia Lima"], ["Dora Lima", "Zeca Lima"], ["Zilda Rocha"]],
        "z": [["Zeca Lima", "Zilda Rocha"]],
        "lima z": [["Zeca Lima", "Zilda Rocha"]],
    }
    for rare_below, budget in ((4_000, 2_000), (1, 1_000), (1, 2)):
        monkeypatch.setattr(repository, "RARE_BELOW", rare_below)
        monkeypatch.setattr(repository, "WALK_BUDGET", budget)
        for q, answer in expected.items():
            assert await pages(q) == answer, (q, rare_below, budget)


async def test_a_common_first_name_reads_one_page_of_terms_in_page_order(
    db: FastAPI, pg_database: PgTestDatabase, admin_engine: AsyncEngine
) -> None:
    """Every "Maria" sorts under M: walking names in order reads most of the practice first,
    and reading every match then sorting grows with the practice. The terms are filed by head
    and full name, so the page is read in order from the cursor and the scan stops after it:
    one statement, a page's worth of index entries (a patient may have two "maria" terms)."""
    settings = make_test_settings(
        database_url=pg_database.app_url, migrations_database_url=pg_database.owner_url
    )
    practice = (await seed_bulk(settings, BulkPlan(1, 4000, 0))).practices[0]
    async with admin_engine.begin() as connection:  # committed: statistics as autovacuum's
        await connection.execute(text("ANALYZE patients, patient_search_terms"))
    database = create_database(settings)
    try:
        with recording(database) as sent:
            async with database.sessionmaker() as session:
                await set_session_tenant(session, practice.tenant_id)
                async with session.begin():
                    repo = PatientRepository(session)
                    first = await repo.page(PatientFilters(q="maria"), 50, None)
                    cursor = (first[49].full_name, first[49].id)
                    second = await repo.page(PatientFilters(q="maria"), 50, cursor)
                    everyone = [p async for p in repo.stream(PatientFilters(q="maria"))]
    finally:
        await database.dispose()
    assert len(first) == 51
    assert [p.id for p in first[:50] + second] == [p.id for p in everyone[: 50 + len(second)]]
    searches = [(sql, args) for sql, args in sent if "FROM patients" in sql][:2]
    read = []
    connection = await asyncpg.connect(_dsn(pg_database.app_url))
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT set_config('app.tenant_id', $1, true)", str(practice.tenant_id)
            )
            for sql, args in searches:
                rows = await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", *args)
                plan = "\n".join(row[0] for row in rows)
                assert "Seq Scan" not in plan, plan
                read += [int(n) * int(loops) for n, loops in STREAM.findall(plan)]
    finally:
        await connection.close()
    assert len(read) == 2, read
    assert max(read) <= 120, read


async def test_a_rename_moves_the_patient_in_search_pages(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """The terms carry the name a search orders by: after a rename the patient is found by
    its new words only, at its new place, and the pages still follow the cursor."""
    owner = await make_member(db, role="owner")
    for name in ("Ana Lima", "Bia Lima", "Caio Lima", "Dora Lima"):
        await create(client, owner.headers, full_name=name)
    zeca = await create(client, owner.headers, full_name="Zeca Lima", email="zeca@lima.example")

    async def pages(q: str) -> list[list[str]]:
        return await search_pages(client, owner.headers, {"q": q})

    assert await pages("lima") == [
        ["Ana Lima", "Bia Lima"], ["Caio Lima", "Dora Lima"], ["Zeca Lima"]
    ]  # fmt: skip
    renamed = await client.patch(
        f"{PATIENTS}/{zeca}", json={"full_name": "Abel Lima"}, headers=owner.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert await pages("lima") == [
        ["Abel Lima", "Ana Lima"], ["Bia Lima", "Caio Lima"], ["Dora Lima"]
    ]  # fmt: skip
    assert await pages("zeca") == [["Abel Lima"]]  # still its e-mail's word
    assert await pages("abel li") == [["Abel Lima"]]
    await client.patch(f"{PATIENTS}/{zeca}", json={"email": None}, headers=owner.headers)
    assert await pages("zeca") == [[]]


async def test_searches_of_every_length_page_like_the_whole_answer(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """One-, two- and three-or-more-character words, one or several of them (read through the
    terms differently: a walk, a few heads, one head, several heads leapfrogged),
    alone, together and with other filters: the pages, put together, are exactly the
    patients every word of the query starts a word of, in name order, deleted ones never."""
    owner = await make_member(db, role="owner")
    people = [
        ("Ana Lima", "ana.lima@mail.example", True),
        ("Ana Lins", None, True),
        ("Anabela Lima", "bela@lima.example", False),
        ("Bruno Anselmo", "bruno@anselmo.example", True),
        ("Carla Li", "li@mail.example", True),
        ("Lia Andrade", None, True),
        ("Liz Lima", "liz@liz.example", False),
        ("Mario Lindo", "mario.lindo@mail.example", True),
    ]
    ids = {}
    for name, email, active in people:
        ids[name] = await create(client, owner.headers, full_name=name, email=email, active=active)
    gone = await create(client, owner.headers, full_name="Ana Limeira")
    assert (await client.delete(f"{PATIENTS}/{gone}", headers=owner.headers)).status_code == 204

    async def pages(params: dict[str, Any]) -> list[str]:
        return [name for page in await search_pages(client, owner.headers, params) for name in page]

    listed = await pages({})  # the list order (the database's collation)
    expected = {
        "a": {"Ana Lima", "Ana Lins", "Anabela Lima", "Bruno Anselmo", "Lia Andrade"},
        "an": {"Ana Lima", "Ana Lins", "Anabela Lima", "Bruno Anselmo", "Lia Andrade"},
        "li": {
            "Ana Lima", "Ana Lins", "Anabela Lima", "Carla Li", "Lia Andrade", "Liz Lima",
            "Mario Lindo",
        },
        "lima": {"Ana Lima", "Anabela Lima", "Liz Lima"},
        "an li": {"Ana Lima", "Ana Lins", "Anabela Lima", "Lia Andrade"},
        "lin an": {"Ana Lins"},
        "mail li": {"Ana Lima", "Carla Li", "Mario Lindo"},
        "lima ana": {"Ana Lima", "Anabela Lima"},
        "example lima": {"Ana Lima", "Anabela Lima", "Liz Lima"},
        "example mail lin": {"Mario Lindo"},
        "ana lima m": {"Ana Lima"},
        "ana lindo": set(),
    }  # fmt: skip
    for q, names in expected.items():
        assert await pages({"q": q}) == [name for name in listed if name in names], q
    inactive = [name for name in listed if name in {"Anabela Lima", "Liz Lima"}]
    assert await pages({"q": "li", "active": "false"}) == inactive
    assert await pages({"q": "lima", "active": "true"}) == ["Ana Lima"]
    assert await pages({"q": "example lima", "active": "false"}) == inactive
    assert await pages({"q": "limeira"}) == []


async def test_an_update_racing_a_delete_gives_the_deleted_patient_no_terms(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """The update waits for the delete (FOR UPDATE) and then finds no patient; reading the row
    before the delete commits, it would rename the deleted patient and index it again."""
    owner = await make_member(db, role="owner")
    patient = await create(client, owner.headers, full_name="Ana Lima")
    assert owner.tenant_id is not None
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        async with session.begin():
            service = PatientService(session, owner.tenant_id, db.state.outbox)
            await service.delete(uuid.UUID(patient), Actor(owner.user_id))
            await session.flush()
            update = asyncio.create_task(
                client.patch(
                    f"{PATIENTS}/{patient}", json={"full_name": "Bia Prado"}, headers=owner.headers
                )
            )
            await asyncio.sleep(0.3)  # the update reads the patient meanwhile
        assert (await update).status_code == 404
    assert await terms_of(db, owner.tenant_id, patient) == set()
