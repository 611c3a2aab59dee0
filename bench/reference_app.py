"""The minimal endpoint issue 12 compares the app with: Starlette + asyncpg + PyJWT + orjson.

Per request it does the same work the app must do, and nothing else: verify a bearer JWT, begin a
transaction as the app role, set the tenant for RLS, run the app's own SQL (captured from its
repositories by bench/queries.py), commit, answer JSON. Served by uvicorn with as many workers
as `clinicflow serve` gets:

    BENCH_REFERENCE_CONFIG=/path/config.pickle uvicorn bench.reference_app:app --workers 2
"""

from __future__ import annotations

import asyncio
import os
import pickle
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]
import jwt
import orjson
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.queries import Query
from clinicflow.appointments.availability import free_slots
from clinicflow.tenants.settings_schema import weekly_hours

LONGEST = timedelta(minutes=720)


def _config() -> dict[str, Any]:
    with open(os.environ["BENCH_REFERENCE_CONFIG"], "rb") as file:
        # Written by bench/api.py a moment before, in a private temporary directory.
        config: dict[str, Any] = pickle.load(file)  # noqa: S301
    return config


CONFIG = _config()
QUERIES: dict[str, Query] = CONFIG["queries"]
TENANT: uuid.UUID = CONFIG["tenant_id"]
SECRET: str = CONFIG["jwt_secret"]
HASHER = PasswordHash(
    (
        Argon2Hasher(
            memory_cost=CONFIG["hash_memory_kib"],
            time_cost=CONFIG["hash_time_cost"],
            parallelism=CONFIG["hash_parallelism"],
        ),
    )
)
POOL: dict[str, Any] = {}


def _json(content: object, status: int = 200) -> Response:
    # asyncpg returns its own UUID class, which orjson does not know: str() it.
    return Response(
        orjson.dumps(content, default=str), status_code=status, media_type="application/json"
    )


def _tenant(request: Request) -> uuid.UUID | None:
    header = request.headers.get("authorization", "")
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), SECRET, algorithms=["HS256"])
        return uuid.UUID(claims["tid"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


async def read(request: Request) -> Response:
    tenant = _tenant(request)
    if tenant is None:
        return _json({"detail": "unauthorised"}, 401)
    query = QUERIES.get(request.path_params["name"])
    if query is None:
        return _json({"detail": "not found"}, 404)
    async with POOL["pool"].acquire() as connection, connection.transaction():
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        *before, (sql, args) = query.bound_statements({TENANT: tenant})
        earlier = [await connection.fetch(statement, *arguments) for statement, arguments in before]
        rows = await connection.fetch(sql, *args)
    if request.path_params["name"] == "availability":
        return _json(_free_slots(earlier[-1][0], rows))
    return _json({"items": [dict(row) for row in rows]})


def _free_slots(calendar: asyncpg.Record, busy: list[asyncpg.Record]) -> dict[str, Any]:
    """The same computation the app makes of the same rows (its own pure function): the
    reference saves the framework, not the work."""
    zone = ZoneInfo(calendar["timezone"])
    slots = free_slots(
        zone=zone,
        # No JSON codec on this pool: the settings come as text.
        hours=weekly_hours(orjson.loads(calendar["settings"]).get("working_hours")),
        busy=[(row["start_at"], row["end_at"]) for row in busy],
        window=CONFIG["availability_window"],
        duration=timedelta(minutes=30),
    )
    return {"slots": [{"start": start.isoformat(), "end": end.isoformat()} for start, end in slots]}


INSERT = (
    "INSERT INTO appointments (tenant_id, id, patient_id, professional_id, start_at, end_at, "
    "status, allow_overlap, created_by, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', false, $4, now(), now()) RETURNING *"
)


async def create(request: Request) -> Response:
    tenant = _tenant(request)
    if tenant is None:
        return _json({"detail": "unauthorised"}, 401)
    body = orjson.loads(await request.body())
    professional = uuid.UUID(body["professional_id"])
    start = datetime.fromisoformat(body["start"])
    end = start + timedelta(minutes=body["duration_minutes"])
    overlap: Query = QUERIES["overlap"]
    slot_start, slot_end = CONFIG["overlap_slot"]
    values = {
        TENANT: tenant,
        CONFIG["overlap_professional"]: professional,
        slot_start: start,
        slot_end: end,
        slot_start - LONGEST: start - LONGEST,
    }
    async with POOL["pool"].acquire() as connection, connection.transaction():
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"appointments:{professional}",
        )
        if await connection.fetchrow(overlap.sql, *overlap.bind(values)):
            return _json({"detail": "overlap"}, 409)
        row = await connection.fetchrow(
            INSERT, tenant, uuid.uuid4(), uuid.UUID(body["patient_id"]), professional, start, end
        )
    return _json(dict(row), 201)


async def login(request: Request) -> Response:
    body = orjson.loads(await request.body())
    async with POOL["pool"].acquire() as connection:
        row = await connection.fetchrow(
            "SELECT id, password_hash, default_tenant_id FROM users WHERE email = $1",
            body["username"].lower(),
        )
    if row is None or not await asyncio.to_thread(
        HASHER.verify, body["password"], row["password_hash"]
    ):
        return _json({"detail": "invalid credentials"}, 401)
    token = jwt.encode(
        {"sub": str(row["id"]), "tid": str(row["default_tenant_id"])}, SECRET, algorithm="HS256"
    )
    return _json({"access_token": token, "token_type": "bearer"})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    POOL["pool"] = await asyncpg.create_pool(CONFIG["dsn"], min_size=2, max_size=10)
    yield
    await POOL["pool"].close()


app = Starlette(
    routes=[
        Route("/ref/read/{name}", read),
        Route("/ref/appointments", create, methods=["POST"]),
        Route("/ref/login", login, methods=["POST"]),
        Route("/health", lambda request: _json({"status": "ok"})),
    ],
    lifespan=lifespan,
)
