"""/mcp: the AI receptionist, driven by the official MCP SDK client over real HTTP against
`clinicflow serve --workers 2` (a subprocess on a free port, on this run's test database)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult, TextContent
from sqlalchemy import func, select

from clinicflow.agents.tools import TOOLS
from clinicflow.appointments.models import Appointment
from clinicflow.auth.permissions import Permission as P
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.main import create_app
from clinicflow.patients.models import Patient
from tests import documented_statuses
from tests.conftest import PgTestDatabase
from tests.factories import Member, make_api_key, make_member, make_platform_admin, make_tenant

READ_TOOLS = {"find_patient", "get_availability"}
ALL_TOOLS = {
    "find_patient", "create_patient", "get_availability", "book_appointment",
    "reschedule_appointment", "cancel_appointment", "list_agenda", "list_professionals",
}  # fmt: skip
ALL_SCOPES = [
    "patients:read", "patients:write", "appointments:read", "appointments:write",
    "availability:read", "metrics:read", "practice:read",
]  # fmt: skip
# A Monday at least a week ahead (agents book only times still to come); default working hours
# are Mon-Fri 09:00-18:00.
MONDAY = (date.today() + timedelta(days=7 + (7 - date.today().weekday()) % 7)).isoformat()
ZONE = "America/Sao_Paulo"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(pg_database: PgTestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server, two worker processes, on the test database."""
    port, workdir = _free_port(), tmp_path_factory.mktemp("serve")
    env = {
        **os.environ,
        "DATABASE_URL": pg_database.app_url,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "false",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "PASSWORD_HASH_TIME_COST": "1",
        "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
    }
    env.pop("REDIS_URL", None)
    command = [str(Path(sys.executable).parent / "clinicflow"), "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    log = (workdir / "server.log").open("wb")  # the server's JSON log lines, for a failure
    process = subprocess.Popen(command, env=env, cwd=workdir, stderr=log)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "clinicflow serve exited"
            assert time.monotonic() < deadline, "clinicflow serve did not start"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@asynccontextmanager
async def agent(
    server: str, key: str, *, bearer: bool = False, path: str = "/mcp"
) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(f"{server}{path}", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.isError, text_of(result)
    assert result.structuredContent is not None
    return result.structuredContent


async def practice(db: FastAPI, timezone: str = ZONE) -> Member:
    return await make_member(db, role="owner", tenant_id=await make_tenant(db, timezone=timezone))


async def rest_patient(client: httpx.AsyncClient, owner: Member, name: str) -> str:
    response = await client.post(
        "/api/v1/patients", json={"full_name": name}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def count(db: FastAPI, tenant_id: uuid.UUID | None, model: type) -> int:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, tenant_id)
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_read_scoped_key_sees_only_read_tools_and_cannot_book(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await practice(db)
    patient = await rest_patient(client, owner, "Ana Lima")
    key = await make_api_key(db, owner.tenant_id, ["patients:read", "availability:read"])
    async with agent(server, key) as session:
        listed = (await session.list_tools()).tools
        assert {tool.name for tool in listed} == READ_TOOLS
        refused = await session.call_tool(
            "book_appointment", {"patient_id": patient, "start": f"{MONDAY}T10:00:00-03:00"}
        )
        found = await call(session, "find_patient", query="ana")
    assert refused.isError
    assert "appointments:write" in text_of(refused)
    assert await count(db, owner.tenant_id, Appointment) == 0
    assert [item["id"] for item in found["items"]] == [patient]


async def test_the_server_answers_under_the_api_prefix_too(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    """SPEC §3 lists `/mcp` among the /api/v1 routes: an agent configured with either URL
    gets the same server, bound by the same key."""
    owner = await practice(db)
    patient = await rest_patient(client, owner, "Ana Lima")
    key = await make_api_key(db, owner.tenant_id, ["patients:read", "availability:read"])
    async with agent(server, key, path="/api/v1/mcp") as session:
        listed = {tool.name for tool in (await session.list_tools()).tools}
        found = await call(session, "find_patient", query="ana")
    assert listed == READ_TOOLS
    assert [item["id"] for item in found["items"]] == [patient]


async def test_every_tool_has_a_schema_with_the_spec_names_and_none_reaches_records_or_finance(
    server: str, db: FastAPI
) -> None:
    owner = await practice(db)
    async with agent(server, await make_api_key(db, owner.tenant_id, ALL_SCOPES)) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == ALL_TOOLS
    inputs = {name: set(tool.inputSchema["properties"]) for name, tool in tools.items()}
    assert inputs["find_patient"] == {"query"}
    assert inputs["create_patient"] == {"full_name", "phone", "email", "birth_date"}
    assert {"from", "to", "duration_minutes"} <= inputs["get_availability"]
    assert {"patient_id", "start", "duration_minutes"} <= inputs["book_appointment"]
    assert inputs["reschedule_appointment"] == {"appointment_id", "start"}
    assert inputs["cancel_appointment"] == {"appointment_id", "reason"}
    assert inputs["list_agenda"] == {"from", "to", "patient_id"}
    assert tools["book_appointment"].inputSchema["required"] == ["patient_id", "start"]
    assert all(tool.outputSchema for tool in tools.values())
    assert ZONE in (tools["get_availability"].description or "")
    assert not any("record" in name or "financ" in name for name in tools)


async def test_a_full_conversation_shows_in_rest_with_history_and_the_key_in_the_audit_trail(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await practice(db)
    patient = await rest_patient(client, owner, "João da Silva")
    key = await make_api_key(db, owner.tenant_id, ALL_SCOPES, name="whatsapp bot")
    async with agent(server, key, bearer=True) as session:
        found = await call(session, "find_patient", query="joao da")
        assert [item["id"] for item in found["items"]] == [patient]
        free = await call(
            session, "get_availability", **{"from": f"{MONDAY}T00:00:00-03:00",
            "to": f"{MONDAY}T23:59:00-03:00", "duration_minutes": 50},
        )  # fmt: skip
        assert free["timezone"] == ZONE
        assert free["slots"][0]["start"] == f"{MONDAY}T09:00:00-03:00"
        booked = await call(
            session, "book_appointment", patient_id=patient, start=free["slots"][0]["start"]
        )
        moved = await call(
            session, "reschedule_appointment", appointment_id=booked["id"],
            start=free["slots"][2]["start"],
        )  # fmt: skip
        upcoming = await call(session, "list_agenda", patient_id=patient, **{
            "from": f"{MONDAY}T00:00:00-03:00"})  # fmt: skip
        cancelled = await call(
            session, "cancel_appointment", appointment_id=booked["id"], reason="patient travels"
        )
    assert booked["professional_id"] == str(owner.user_id)  # the only professional: the default
    assert moved["start"] == free["slots"][2]["start"] == f"{MONDAY}T10:40:00-03:00"
    assert [item["id"] for item in upcoming["items"]] == [booked["id"]]
    assert upcoming["items"][0]["patient_name"] == "João da Silva"
    assert cancelled["status"] == "cancelled"
    # The key holds patients:read, so every result names the patient.
    assert [result["patient_name"] for result in (booked, moved, cancelled)] == [
        "João da Silva"
    ] * 3

    shown = await client.get(f"/api/v1/appointments/{booked['id']}", headers=owner.headers)
    assert shown.json()["status"] == "cancelled"
    assert shown.json()["start"] == f"{MONDAY}T13:40:00Z"
    history = await client.get(
        f"/api/v1/appointments/{booked['id']}/history", headers=owner.headers
    )
    keys = (await client.get("/api/v1/api-keys", headers=owner.headers)).json()["items"]
    key_id = next(item["id"] for item in keys if item["name"] == "whatsapp bot")
    assert [
        (c["from_status"], c["to_status"], c["reason"], c["changed_by_api_key_id"])
        for c in history.json()["items"]
    ] == [
        (None, "scheduled", None, key_id),
        ("scheduled", "cancelled", "patient travels", key_id),
    ]
    events = (await client.get("/api/v1/audit-events", headers=owner.headers)).json()["items"]
    by_key = [
        event["action"]
        for event in events
        if event["subject_id"] == booked["id"] and event["actor_api_key_id"] == key_id
    ]
    assert sorted(by_key) == [
        "appointment.booked", "appointment.rescheduled", "appointment.status_changed"
    ]  # fmt: skip


async def test_a_clash_names_the_appointment_and_two_free_slots_and_races_book_once(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await practice(db)
    patient = await rest_patient(client, owner, "Clara")
    key = await make_api_key(db, owner.tenant_id, ALL_SCOPES)
    async with agent(server, key) as session:
        first = await call(
            session, "book_appointment", patient_id=patient, start=f"{MONDAY}T10:00:00-03:00",
            duration_minutes=60,
        )  # fmt: skip
        clash = await session.call_tool(
            "book_appointment",
            {"patient_id": patient, "start": f"{MONDAY}T10:30:00-03:00", "duration_minutes": 60},
        )
    assert clash.isError
    detail = json.loads(text_of(clash).split("\n", 1)[1])
    assert detail["conflicting_appointment_id"] == first["id"]
    # In the practice's offset, like the slots and every result (REST's 409 stays in UTC).
    assert (detail["start"], detail["end"]) == (
        f"{MONDAY}T10:00:00-03:00", f"{MONDAY}T11:00:00-03:00"
    )  # fmt: skip
    assert [slot["start"] for slot in detail["nearby_free_slots"]] == [
        f"{MONDAY}T09:00:00-03:00", f"{MONDAY}T11:00:00-03:00"
    ]  # fmt: skip
    assert await count(db, owner.tenant_id, Appointment) == 1

    async def attempt(minute: int) -> CallToolResult:
        async with agent(server, key) as racer:
            return await racer.call_tool(
                "book_appointment",
                {"patient_id": patient, "start": f"{MONDAY}T15:{minute:02d}:00-03:00",
                 "duration_minutes": 60},
            )  # fmt: skip

    # A key without patients:read books, moves and cancels without learning the name.
    blind = await make_api_key(db, owner.tenant_id, ["appointments:write"])
    async with agent(server, blind) as session:
        unnamed = [
            await call(
                session, "book_appointment", patient_id=patient,
                start=f"{MONDAY}T12:00:00-03:00", duration_minutes=60,
            )
        ]  # fmt: skip
        unnamed.append(
            await call(
                session, "reschedule_appointment", appointment_id=unnamed[0]["id"],
                start=f"{MONDAY}T13:00:00-03:00",
            )
        )  # fmt: skip
        moved_onto = await session.call_tool(
            "reschedule_appointment",
            {"appointment_id": unnamed[0]["id"], "start": f"{MONDAY}T10:30:00-03:00"},
        )
        unnamed.append(await call(session, "cancel_appointment", appointment_id=unnamed[0]["id"]))
    assert [result["patient_name"] for result in unnamed] == [None] * 3
    moved_detail = json.loads(text_of(moved_onto).split("\n", 1)[1])
    assert (moved_detail["start"], moved_detail["end"]) == (detail["start"], detail["end"])
    rest_clash = await client.post(
        "/api/v1/appointments", json={"patient_id": patient, "start": f"{MONDAY}T10:30:00-03:00"},
        headers=owner.headers,
    )  # fmt: skip
    assert rest_clash.status_code == 409
    assert rest_clash.json()["start"] == f"{MONDAY}T13:00:00+00:00"  # REST answers in UTC

    results = await asyncio.gather(*(attempt(minute) for minute in range(0, 40, 4)))
    assert sum(not result.isError for result in results) == 1
    errors = [text_of(r) for r in results if r.isError]
    assert all("already has an appointment" in e for e in errors), errors
    assert await count(db, owner.tenant_id, Appointment) == 3  # the cancelled one stays


async def test_a_key_of_one_practice_never_sees_or_touches_another_practices_patients(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    mine, theirs = await practice(db), await practice(db)
    their_patient = await rest_patient(client, theirs, "Beatriz Outra")
    booked = await client.post(
        "/api/v1/appointments",
        json={"patient_id": their_patient, "start": f"{MONDAY}T09:00:00-03:00"},
        headers=theirs.headers,
    )
    their_appointment = booked.json()["id"]
    key = await make_api_key(db, mine.tenant_id, ALL_SCOPES)
    async with agent(server, key) as session:
        found = await call(session, "find_patient", query="beatriz")
        agenda = await call(session, "list_agenda", patient_id=their_patient)
        attempts = [
            await session.call_tool(
                "book_appointment",
                {"patient_id": their_patient, "start": f"{MONDAY}T11:00:00-03:00"},
            ),
            await session.call_tool(
                "reschedule_appointment",
                {"appointment_id": their_appointment, "start": f"{MONDAY}T12:00:00-03:00"},
            ),
            await session.call_tool("cancel_appointment", {"appointment_id": their_appointment}),
        ]
        missing = await session.call_tool(
            "cancel_appointment", {"appointment_id": str(uuid.uuid4())}
        )
    assert found["items"] == []
    assert agenda["items"] == []
    assert all(result.isError for result in attempts)
    # Another practice's id is answered exactly like a missing one.
    assert text_of(attempts[2]) == text_of(missing)
    assert await count(db, mine.tenant_id, Appointment) == 0
    theirs_now = await client.get(
        f"/api/v1/appointments/{their_appointment}", headers=theirs.headers
    )
    assert (theirs_now.json()["status"], theirs_now.json()["start"]) == (
        "scheduled", f"{MONDAY}T12:00:00Z"
    )  # fmt: skip


async def test_no_key_or_a_revoked_key_gets_the_auth_error_and_nothing_runs(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await practice(db)
    key = await make_api_key(db, owner.tenant_id, ALL_SCOPES, name="old bot")
    keys = (await client.get("/api/v1/api-keys", headers=owner.headers)).json()["items"]
    key_id = next(item["id"] for item in keys if item["name"] == "old bot")
    revoked = await client.delete(f"/api/v1/api-keys/{key_id}", headers=owner.headers)
    assert revoked.status_code == 204
    create = {
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "create_patient", "arguments": {"full_name": "Ghost"}},
    }  # fmt: skip
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=server) as http:
        for credential in ({}, {"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            response = await http.post("/mcp", json=create, headers={**headers, **credential})
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
            assert response.json()["error"] == "invalid_token"
    with pytest.raises(Exception) as failure:  # noqa: PT011 (the SDK's own error types)
        async with agent(server, key) as session:
            await session.list_tools()
    assert "401" in repr(failure.value) or "401" in str(failure.value.__cause__)
    assert await count(db, owner.tenant_id, Patient) == 0


async def test_a_read_only_practice_refuses_the_write_tools_and_still_reads(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await practice(db)
    patient = await rest_patient(client, owner, "Rui")
    admin = await make_platform_admin(db)
    switched = await client.put(
        f"/api/v1/tenants/{owner.tenant_id}/read-only", json={"enabled": True},
        headers=admin.headers,
    )  # fmt: skip
    assert switched.status_code == 200
    key = await make_api_key(db, owner.tenant_id, ALL_SCOPES)
    async with agent(server, key) as session:
        created = await session.call_tool("create_patient", {"full_name": "New Person"})
        booked = await session.call_tool(
            "book_appointment", {"patient_id": patient, "start": f"{MONDAY}T10:00:00-03:00"}
        )
        found = await call(session, "find_patient", query="rui")
    assert created.isError
    assert booked.isError
    assert "read-only" in text_of(created)
    assert [item["id"] for item in found["items"]] == [patient]
    assert await count(db, owner.tenant_id, Patient) == 1
    assert await count(db, owner.tenant_id, Appointment) == 0


async def test_list_professionals_and_bad_input_give_a_bot_what_it_needs(
    server: str, db: FastAPI
) -> None:
    owner = await practice(db)
    key = await make_api_key(db, owner.tenant_id, ALL_SCOPES)
    async with agent(server, key) as session:
        profile = await call(session, "list_professionals")
        naive = await session.call_tool(
            "book_appointment", {"patient_id": str(uuid.uuid4()), "start": f"{MONDAY}T10:00:00"}
        )
        future = await session.call_tool(
            "create_patient", {"full_name": "Zé", "birth_date": "2999-01-01"}
        )
        unknown = await session.call_tool("create_patient", {"full_name": "Zé", "notes": "x"})
    assert profile["timezone"] == ZONE
    assert profile["default_professional_id"] == str(owner.user_id)
    assert [p["id"] for p in profile["professionals"]] == [str(owner.user_id)]
    assert naive.isError
    assert "start" in text_of(naive)
    assert future.isError
    assert "birth_date" in text_of(future)
    assert unknown.isError
    assert await count(db, owner.tenant_id, Patient) == 0


async def test_mcp_requests_spend_the_keys_rate_limit_shared_with_rest(
    db: FastAPI, settings: Settings
) -> None:
    owner = await practice(db)
    key = await make_api_key(db, owner.tenant_id, ALL_SCOPES)
    other_key = await make_api_key(db, owner.tenant_id, ALL_SCOPES)
    app = create_app(
        settings.model_copy(update={"rate_limit_enabled": True, "rate_limit_default": "3/minute"})
    )
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream", "X-Request-ID": "bot-call-1"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(
            app=documented_statuses.recording(app), client=("192.0.2.7", 1234)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            rest = await http.get("/api/v1/patients", headers={"X-API-Key": key})
            answers = [
                await http.post("/mcp", json=ping, headers={**accept, **credential})
                for credential in (
                    {"X-API-Key": key},
                    {"Authorization": f"Bearer {key}"},
                    {"Authorization": f"Bearer {key}"},
                )
            ]
            other = await http.post("/mcp", json=ping, headers={**accept, "X-API-Key": other_key})
    assert rest.status_code == 200
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[0].headers["x-request-id"] == "bot-call-1"
    assert int(answers[2].headers["retry-after"]) >= 1
    assert other.status_code == 200


async def test_the_practices_plan_rules_apply_to_the_tools(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await practice(db)
    await rest_patient(client, owner, "Only One")
    admin = await make_platform_admin(db)
    key = await make_api_key(db, owner.tenant_id, ALL_SCOPES)

    async def put_on_plan(**plan: object) -> None:
        body = {"name": f"plan-{uuid.uuid4().hex[:6]}", **plan}
        created = await client.post("/api/v1/plans", json=body, headers=admin.headers)
        assigned = await client.put(
            f"/api/v1/tenants/{owner.tenant_id}/plan", json={"plan_id": created.json()["id"]},
            headers=admin.headers,
        )  # fmt: skip
        assert assigned.status_code == 200, assigned.text

    await put_on_plan(max_patients=1)
    async with agent(server, key) as session:
        full = await session.call_tool("create_patient", {"full_name": "Second"})
    assert full.isError
    assert "max_patients" in text_of(full)

    await put_on_plan(api_access=False)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx.AsyncClient(base_url=server) as http:
        refused = await http.post(
            "/mcp", json=ping, headers={"X-API-Key": key, "Accept": "application/json"}
        )
    assert refused.status_code == 403
    assert "API access" in refused.json()["detail"]
    assert await count(db, owner.tenant_id, Patient) == 1


def test_no_tool_needs_a_clinical_record_or_finance_permission() -> None:
    """Records and finance stay out of /mcp even if a key could one day hold such a scope."""
    clinical = {P.RECORDS_READ, P.RECORDS_WRITE, P.FINANCE_READ, P.FINANCE_WRITE}
    assert {tool.name for tool in TOOLS} == ALL_TOOLS
    assert not any(tool.permission in clinical for tool in TOOLS)


async def test_an_agent_books_and_moves_only_into_working_hours_still_to_come(
    server: str, client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await practice(db)
    patient = await rest_patient(client, owner, "Lia")
    key = await make_api_key(db, owner.tenant_id, ALL_SCOPES)
    sunday = (date.fromisoformat(MONDAY) - timedelta(days=1)).isoformat()
    refused_starts = [
        "2020-01-06T10:00:00-03:00",  # a Monday at 10:00, years ago
        f"{sunday}T03:00:00-03:00",  # closed on Sundays
        f"{MONDAY}T08:30:00-03:00",  # before opening
        f"{MONDAY}T17:30:00-03:00",  # an hour from 17:30 ends after closing
    ]
    async with agent(server, key) as session:
        refused = [
            await session.call_tool(
                "book_appointment",
                {"patient_id": patient, "start": start, "duration_minutes": 60},
            )
            for start in refused_starts
        ]
        last = await call(
            session, "book_appointment", patient_id=patient, start=f"{MONDAY}T17:00:00-03:00",
            duration_minutes=60,
        )  # fmt: skip
        moves = [
            await session.call_tool(
                "reschedule_appointment", {"appointment_id": last["id"], "start": start}
            )
            for start in refused_starts[:2]
        ]
        past = await call(
            session, "get_availability", **{"from": "2020-01-06T00:00:00-03:00",
            "to": "2020-01-06T23:59:00-03:00"},
        )  # fmt: skip
    texts = [text_of(result) for result in refused + moves]
    assert all(result.isError for result in refused + moves), texts
    assert ["in the past" in text for text in texts] == [True, False, False, False, True, False]
    assert all("working hours" in text for text in texts[1:4] + texts[5:])
    assert all("get_availability" in text for text in texts)
    assert f"Sunday {sunday}T03:00:00-03:00" in texts[1]
    assert "(Sunday: closed; time zone America/Sao_Paulo)" in texts[1]
    assert "(Monday: 09:00-18:00;" in texts[3]
    assert past["slots"] == []  # what an agent is offered, it may book
    shown = await client.get(f"/api/v1/appointments/{last['id']}", headers=owner.headers)
    assert shown.json()["start"] == f"{MONDAY}T20:00:00Z"  # not moved
    assert await count(db, owner.tenant_id, Appointment) == 1

    # Staff on REST still record a past visit and give a special slot outside hours.
    for start in refused_starts[:2]:
        response = await client.post(
            "/api/v1/appointments", json={"patient_id": patient, "start": start},
            headers=owner.headers,
        )  # fmt: skip
        assert response.status_code == 201, response.text
