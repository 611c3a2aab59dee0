"""Issue 12: the API served as in production, against two baselines measured in the same run.

    python -m bench.api            # short (`make bench`): small practices, ~3 minutes
    python -m bench.api --long     # a 10k and a 1M-patient practice (see bench/README.md)
    python -m bench.api --long --explain-only   # seeding, EXPLAIN and the RLS cost; no servers

It creates its own database (cf_bench_<random>, dropped at the end), seeds it with
`clinicflow.bulkseed`, and starts `clinicflow serve --workers N` (ENVIRONMENT=production, the
non-superuser app role so RLS applies, rate limiter on with a budget the run cannot exhaust,
Redis when one answers at 127.0.0.1:6379). Load comes from separate processes (bench/loadgen.py,
16 keep-alive clients). For each hot path it prints req/s and p50/p95/p99 of

- raw asyncpg: BEGIN, set_config('app.tenant_id'), the app's SQL, COMMIT (as the app role);
- the minimal Starlette + asyncpg + PyJWT + orjson endpoint (bench/reference_app.py), served by
  uvicorn with the same worker count;
- the app,

with the app's ratio to each; then EXPLAIN (ANALYZE, BUFFERS) of every hot query as the app role
at both practice sizes, the cost of RLS (policy forced vs not, inside this database only), list
and search latency at the small vs the large practice, and read latency while 20 logins/s run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import pickle
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import asyncpg  # type: ignore[import-untyped]
import httpx
import jwt
from uuid_utils.compat import uuid7

from bench import loadgen, pgdb
from bench.loadgen import HttpRequest, Sample, SqlRequest
from bench.queries import HotQueries, Query, hot_queries
from clinicflow.bulkseed import SEED_PASSWORD, BulkPlan, Practice, seed_bulk
from clinicflow.core.database import create_database
from clinicflow.core.pagination import encode_cursor
from clinicflow.core.settings import Settings

BIN = Path(sys.executable).parent
COMMON, RARE = "silva", "ottoline przybylski"
FIRST_NAME, TWO_COMMON = "maria", "ana silva"
LONGEST = timedelta(minutes=720)
INSERT = (
    "INSERT INTO appointments (tenant_id, id, patient_id, professional_id, start_at, end_at, "
    "status, allow_overlap, created_by, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', false, $4, now(), now()) RETURNING *"
)
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


@dataclass(frozen=True, slots=True)
class Mode:
    small: int
    large: int
    professionals: int
    seconds: float
    scale_seconds: float
    rls_runs: int
    login_rate: float = 20.0
    # argon2 (memory KiB, passes) of the seeded logins and of the app; None: the app's default.
    password_hash: tuple[int, int] | None = None
    read_share: float = 0.5  # of the list's measured throughput, offered while logins run
    login_rounds: int = 5  # idle/busy pairs for the reads-under-logins ratio


SHORT = Mode(
    small=2_000,
    large=20_000,
    professionals=10,
    seconds=4.5,
    scale_seconds=2,
    rls_runs=100,
    login_rounds=3,
)
LONG = Mode(
    small=10_000, large=1_000_000, professionals=100, seconds=12, scale_seconds=8, rls_runs=30
)


@dataclass(slots=True)
class Seeded:
    practice: Practice
    patients: int
    queries: HotQueries
    week: datetime
    patient_ids: list[uuid.UUID]
    deep_cursor: tuple[str, uuid.UUID]
    token: str = ""


def log(message: str) -> None:
    print(message, flush=True)


# --- setup -----------------------------------------------------------------------------------


def _hash_settings(mode: Mode) -> dict[str, int]:
    if mode.password_hash is None:
        return {}
    memory_kib, time_cost = mode.password_hash
    return {"password_hash_memory_kib": memory_kib, "password_hash_time_cost": time_cost}


def seed(database: pgdb.BenchDatabase, mode: Mode) -> tuple[Seeded, Seeded]:
    settings = database.settings(**_hash_settings(mode))
    seeded = []
    for patients in (mode.small, mode.large):
        started = time.perf_counter()
        plan = BulkPlan(1, patients, 1, professionals=mode.professionals)
        result = asyncio.run(seed_bulk(settings, plan))
        log(
            f"seeded a practice of {patients:,} patients + {patients:,} appointments over "
            f"{mode.professionals} professionals in {time.perf_counter() - started:.1f} s"
        )
        seeded.append(asyncio.run(_describe(database, settings, result.practices[0], patients)))
    asyncio.run(_analyze(database))
    return seeded[0], seeded[1]


async def _analyze(database: pgdb.BenchDatabase) -> None:
    connection = await asyncpg.connect(database.owner_dsn)
    try:
        # As after autovacuum catches up in production: statistics, and the visibility map
        # (an index-only scan of a freshly COPied table otherwise visits every heap row too).
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()


async def _describe(
    database: pgdb.BenchDatabase, settings: Settings, practice: Practice, patients: int
) -> Seeded:
    owner = await asyncpg.connect(database.owner_dsn)
    try:
        async with owner.transaction():
            await owner.execute(
                "SELECT set_config('app.tenant_id', $1, true)", str(practice.tenant_id)
            )
            deep = await owner.fetchrow(
                "SELECT full_name, id FROM patients ORDER BY full_name, id OFFSET $1 LIMIT 1",
                int(patients * 0.9),
            )
            ids = [row["id"] for row in await owner.fetch("SELECT id FROM patients LIMIT 2000")]
    finally:
        await owner.close()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    slot_start = week + timedelta(days=2, hours=10)
    app_database = create_database(settings)
    try:
        queries = await hot_queries(
            app_database,
            practice.tenant_id,
            deep_cursor=(deep["full_name"], deep["id"]),
            common=COMMON,
            rare=RARE,
            first_name=FIRST_NAME,
            two_common=TWO_COMMON,
            professional=practice.professional_ids[0],
            week=week,
            slot=(slot_start, slot_start + timedelta(minutes=30)),
        )
    finally:
        await app_database.dispose()
    return Seeded(practice, patients, queries, week, ids, (deep["full_name"], deep["id"]))


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_answers() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=1):
        return True
    return False


UNLIMITED = "100000000/minute"


def app_environment(database: pgdb.BenchDatabase, workdir: Path) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "MIGRATIONS_", "RATE_LIMIT_", "REDIS_", "APP_DB_"))
    }
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    environment.update(
        ENVIRONMENT="production",
        DATABASE_URL=database.url(database.app_role),
        SECRET_KEY=secrets.token_urlsafe(48),
        AUDIT_HMAC_KEY=secrets.token_urlsafe(48),
        ENCRYPTION_KEYS=f"bench:{key}",
        AUDIT_HEAD_FILE=str(workdir / "audit-heads.jsonl"),
        MAIL_OUTBOX_DIR=str(workdir / "outbox"),
        LOG_LEVEL="WARNING",
        RATE_LIMIT_ENABLED="true",
    )
    for name in ("DEFAULT", "ANONYMOUS", "LOGIN_IP", "LOGIN_ACCOUNT", "REFRESH"):
        environment[f"RATE_LIMIT_{name}"] = UNLIMITED
    if redis_answers():
        environment["REDIS_URL"] = "redis://127.0.0.1:6379/13"
    return environment


@contextlib.contextmanager
def served(
    command: list[str], environment: dict[str, str], workdir: Path, name: str
) -> Iterator[int]:
    port = free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603  (our own commands, fixed arguments)
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield port
        except BaseException:
            log(f"--- {name} log (tail) ---\n{log_path.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- requests --------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def app_reads(seeded: Seeded) -> dict[str, HttpRequest]:
    headers = {"Authorization": f"Bearer {seeded.token}"}
    professional = str(seeded.practice.professional_ids[0])
    week = {"from": _iso(seeded.week), "to": _iso(seeded.week + timedelta(days=7))}

    def get(path: str, **params: str) -> HttpRequest:
        return ("GET", f"{path}?{urlencode(params)}", headers, b"")

    return {
        "list": get("/api/v1/patients", limit="50"),
        "list_deep": get(
            "/api/v1/patients",
            limit="50",
            cursor=encode_cursor([seeded.deep_cursor[0], str(seeded.deep_cursor[1])]),
        ),
        "search": get("/api/v1/patients", q=COMMON, limit="50"),
        "search_rare": get("/api/v1/patients", q=RARE, limit="50"),
        "search_first": get("/api/v1/patients", q=FIRST_NAME, limit="50"),
        "search_two": get("/api/v1/patients", q=TWO_COMMON, limit="50"),
        "agenda": get("/api/v1/appointments", professional_id=professional, limit="100", **week),
        "availability": get(
            "/api/v1/availability", professional_id=professional, duration="30", **week
        ),
    }


def _slots(seeded: Seeded, year: int, count: int) -> Iterator[tuple[uuid.UUID, datetime]]:
    """Free, distinct slots far from the seeded agenda: one backend, one year."""
    professionals = seeded.practice.professional_ids
    base = datetime(year, 1, 1, tzinfo=UTC)
    for index in range(count):
        yield (
            professionals[index % len(professionals)],
            base + timedelta(minutes=30 * (index // len(professionals))),
        )


def app_creates(seeded: Seeded, path: str, token: str, year: int) -> list[HttpRequest]:
    headers = {"Authorization": f"Bearer {token}"}
    patients = seeded.patient_ids
    return [
        (
            "POST",
            path,
            headers,
            json.dumps(
                {
                    "patient_id": str(patients[index % len(patients)]),
                    "start": _iso(start),
                    "duration_minutes": 30,
                    "professional_id": str(professional),
                }
            ).encode(),
        )
        for index, (professional, start) in enumerate(_slots(seeded, year, 60_000))
    ]


def raw_creates(seeded: Seeded, year: int) -> list[SqlRequest]:
    overlap = seeded.queries.overlap
    tenant = seeded.practice.tenant_id
    captured_professional = seeded.practice.professional_ids[0]
    slot_start, slot_end = _overlap_slot(seeded)
    requests: list[SqlRequest] = []
    patients = seeded.patient_ids
    for index, (professional, start) in enumerate(_slots(seeded, year, 60_000)):
        end = start + timedelta(minutes=30)
        values = {
            captured_professional: professional,
            slot_start: start,
            slot_end: end,
            slot_start - LONGEST: start - LONGEST,
        }
        requests.append(
            [
                (LOCK, (f"appointments:{professional}",)),
                (overlap.sql, overlap.bind(values)),
                (
                    INSERT,
                    (tenant, uuid7(), patients[index % len(patients)], professional, start, end),
                ),
            ]
        )
    return requests


def _overlap_slot(seeded: Seeded) -> tuple[datetime, datetime]:
    start = seeded.week + timedelta(days=2, hours=10)
    return start, start + timedelta(minutes=30)


def login_requests(emails: list[str], path: str) -> list[HttpRequest]:
    return [
        ("POST", path, {}, json.dumps({"username": email, "password": SEED_PASSWORD}).encode())
        for email in emails
    ]


# --- measuring -------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    name: str
    backend: str
    sample: Sample


def _run(start: loadgen.Running) -> Sample:
    sample = start.result()
    if sample.failures:
        log(f"    ! {sample.failures} failures, first: {sample.first_failure}")
    return sample


def measure_http(
    port: int,
    requests: list[HttpRequest],
    clients: int,
    seconds: float,
    cycle: bool = True,
    warm: bool = True,
) -> Sample:
    if warm:
        _run(
            loadgen.http(
                port,
                requests[:50] if not cycle else requests,
                clients=clients,
                seconds=min(1.0, seconds),
                cycle=cycle,
            )
        )
    running = loadgen.http(
        port,
        requests[50:] if not cycle else requests,
        clients=clients,
        seconds=seconds,
        cycle=cycle,
    )
    # The load generator's processes take a moment to start: a deadline of the run's own
    # seconds (1.5 in an interleaved round) passed before they connected, and printed "?".
    split = connection_split(port, clients, until=time.monotonic() + seconds + 5.0)
    sample = _run(running)
    sample.splits.append(split)
    return sample


def connection_split(port: int, clients: int, until: float) -> str:
    """How the server's worker processes share the load generator's connections, busiest
    first ("12/4"), once all `clients` are connected (or at `until`); "?" where `ss` cannot
    tell. uvicorn's workers accept from one shared socket, and the first to wake takes every
    connection waiting: a run with all 16 on one worker of two gets half the throughput, which
    is most of the run-to-run spread of these figures."""
    while True:
        try:
            listing = subprocess.run(  # noqa: S603  (fixed arguments)
                ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],  # noqa: S607
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return "?"
        per_process: dict[str, int] = {}
        for pid in re.findall(r"pid=(\d+)", listing):
            per_process[pid] = per_process.get(pid, 0) + 1
        shares = sorted(per_process.values(), reverse=True)
        if sum(shares) >= clients or time.monotonic() >= until:
            return "/".join(map(str, shares)) or "?"
        time.sleep(0.05)


# Reads alternate raw, reference and app this many times, each for a share of the seconds: a
# drift in the machine's speed (seen here: the same server at 470 and at 970 req/s a minute
# apart) then weighs on the three alike instead of on whichever ran during it.
ROUNDS = 3


def interleaved(
    measures: dict[str, Callable[[float, bool], Sample]], seconds: float
) -> dict[str, Sample]:
    """Each measure called ROUNDS times in turn with (its share of `seconds`, whether to warm
    up first: the first round only), the rounds added up per measure."""
    merged = {name: Sample() for name in measures}
    for round_number in range(ROUNDS):
        for name, measure in measures.items():
            merged[name].absorb(measure(seconds / ROUNDS, round_number == 0))
    return merged


def _answer_size(port: int, request: HttpRequest) -> int:
    method, target, headers, body = request
    response = httpx.request(
        method, f"http://127.0.0.1:{port}{target}", headers=headers, content=body, timeout=30
    )
    response.raise_for_status()
    answer = response.json()
    return len(answer["slots"] if "slots" in answer else answer["items"])


async def _raw_size(dsn: str, tenant: uuid.UUID, query: Query) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return len(await query.rows(connection, tenant))
    finally:
        await connection.close()


def check_same_answers(
    name: str,
    app_port: int,
    app_request: HttpRequest,
    ref_port: int,
    ref_request: HttpRequest,
    dsn: str,
    seeded: Seeded,
) -> None:
    """The three must do the same work: as many items (or slots) from the app as from the
    reference, as many rows from the raw query, and not none. A baseline answering
    nothing is fast for the wrong reason (once: a captured ROLLBACK ended its transaction)."""
    app = _answer_size(app_port, app_request)
    reference = _answer_size(ref_port, ref_request)
    query = seeded.queries.reads()[name]
    raw = asyncio.run(_raw_size(dsn, seeded.practice.tenant_id, query))
    # A page reads one row more than it shows (is there a next page?), which the reference
    # sends as well; availability's rows are busy times, not slots.
    page = name != "availability"
    agree = app <= reference <= app + 1 and app <= raw <= app + 1 if page else app == reference
    if not app or not agree:
        raise RuntimeError(
            f"{name}: the app answers {app} items, the reference {reference}, raw SQL {raw} rows"
        )


def measure_sql(
    dsn: str, tenant: uuid.UUID, requests: list[SqlRequest], clients: int, seconds: float
) -> Sample:
    return _run(loadgen.sql(dsn, str(tenant), requests, clients=clients, seconds=seconds))


class ThroughputTable:
    """Prints each measurement as it lands; the app's row (measured last) gets its ratios."""

    def __init__(self) -> None:
        self.samples: dict[str, dict[str, Sample]] = {}
        log(
            f"{'path':14} {'backend':10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
            f" {'n':>7} {'app/raw':>8} {'app/ref':>8}  connections per worker, each run"
        )

    def append(self, row: Row) -> None:
        backends = self.samples.setdefault(row.name, {})
        backends[row.backend] = sample = row.sample
        ratios = ["", ""]
        if row.backend == "app":
            for position, base in enumerate(("raw", "reference")):
                other = backends.get(base)
                if other is not None and other.rate:
                    ratios[position] = f"{sample.rate / other.rate:7.2f}x"
        log(
            f"{row.name:14} {row.backend:10} {sample.rate:8.0f} {sample.quantile(0.5):8.2f} "
            f"{sample.quantile(0.95):8.2f} {sample.quantile(0.99):8.2f} "
            f"{len(sample.latencies):7d} {ratios[0]:>8} {ratios[1]:>8}  {' '.join(sample.splits)}"
        )


# --- EXPLAIN and RLS -------------------------------------------------------------------------

_EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")
_ROWS = re.compile(r"actual time=\S+ rows=(\d+)")
_INDEX = re.compile(r"(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\w+)")


@dataclass(frozen=True, slots=True)
class Explained:
    lines: list[str]
    ms: float  # the custom plan: what the first executions of a prepared statement get
    generic_ms: float  # what PostgreSQL may switch to from the sixth execution on
    generic_lines: list[str]

    @property
    def rows(self) -> int:
        """What the query returned (its plan's top node)."""
        found = _ROWS.search(self.lines[0]) if self.lines else None
        return int(found.group(1)) if found else -1


async def explain(dsn: str, tenant: uuid.UUID, query: Query) -> Explained:
    connection = await asyncpg.connect(dsn)

    async def fastest(statement: str, *args: object) -> tuple[float, list[str]]:
        runs = []
        for _ in range(3):  # the fastest of three: sub-millisecond timings are noisy
            rows = await connection.fetch(statement, *args)
            lines = [row[0] for row in rows]
            timing = next(
                (float(m.group(1)) for line in lines if (m := _EXECUTION.search(line))), 0.0
            )
            runs.append((timing, lines))
        return min(runs)

    try:
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
            await connection.fetch(query.sql, *query.args)  # warm the cache once
            custom_ms, lines = await fastest(f"EXPLAIN (ANALYZE, BUFFERS) {query.sql}", *query.args)
            # The app's driver prepares its statements (asyncpg), and from the sixth execution
            # on a connection PostgreSQL may switch to a plan made for any value: show that
            # one too. A one-off EXPLAIN with parameters plans for the values given, so the
            # generic plan needs PREPARE and EXECUTE.
            await connection.execute(f"PREPARE bench_generic AS {query.sql}")
            await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            generic_ms, generic = await fastest(
                "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_generic("
                + ", ".join(query.literal_args())
                + ")"
            )
            await connection.execute("DEALLOCATE bench_generic")
    finally:
        await connection.close()
    return Explained(lines, custom_ms, generic_ms, generic)


def explain_report(database: pgdb.BenchDatabase, small: Seeded, large: Seeded) -> None:
    log("\n== EXPLAIN (ANALYZE, BUFFERS) as the app role, RLS on, tenant set ==")
    summary = []
    for name, query in large.queries.reads().items():
        big = asyncio.run(explain(database.app_dsn, large.practice.tenant_id, query))
        little = asyncio.run(
            explain(database.app_dsn, small.practice.tenant_id, small.queries.reads()[name])
        )
        log(f"\n-- {name} ({large.patients:,} patients): {query.sql}")
        for line in big.lines:
            log(f"   {line}")
        if big.generic_ms > 2 * big.ms + 0.1:
            log(f"   -- generic plan (plan_cache_mode = force_generic_plan): {big.generic_ms} ms")
            for line in big.generic_lines:
                log(f"   {line}")
        plan = "\n".join(big.lines)
        used = ",".join(sorted(set(_INDEX.findall(plan)))) or "-"
        tenant_leads = bool(re.search(r"Index Cond: \(+\(?\w*\.?tenant_id = ", plan))
        seq = "Seq Scan" in plan
        summary.append((name, little, big, used, tenant_leads, seq))
    log(
        f"\n{'query':14} {small.patients:>9,}p ms {large.patients:>9,}p ms {'ratio':>7} "
        f"{'rows':>9} {'generic ms':>11}  tenant_id leads  seq scan  indexes"
    )
    for name, little, big, indexes, leads, seq in summary:
        ratio = big.ms / little.ms if little.ms else float("nan")
        rows = f"{little.rows}/{big.rows}"
        log(
            f"{name:14} {little.ms:14.3f} {big.ms:14.3f} {ratio:6.1f}x {rows:>9} "
            f"{big.generic_ms:11.3f}  {leads!s:15}  {seq!s:8}  {indexes}"
        )
    log(
        "(ms: custom plan, fastest of 3; rows: returned at each size, a page being 51; "
        "generic ms: the large practice with a generic plan)"
    )


async def _timed(
    connection: asyncpg.Connection, tenant: uuid.UUID, query: Query, runs: int
) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await query.rows(connection, tenant)  # what the app runs: a search's SET LOCAL too
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def rls_cost(database: pgdb.BenchDatabase, seeded: Seeded, runs: int) -> None:
    """The owner is subject to the policy only while FORCE is on: time the same queries as the
    owner with FORCE (policy on) and NO FORCE (off), then restore FORCE whatever happens."""
    log(
        f"\n== Cost of RLS ({seeded.patients:,}-patient practice, median of {runs}, as owner, "
        "prepared statements as the app's driver makes them) =="
    )
    tables = ("patients", "patient_search_terms", "appointments")
    connection = await asyncpg.connect(database.owner_dsn)
    try:
        on = {
            name: await _timed(connection, seeded.practice.tenant_id, query, runs)
            for name, query in seeded.queries.reads().items()
        }
        try:
            for table in tables:
                await connection.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            off = {
                name: await _timed(connection, seeded.practice.tenant_id, query, runs)
                for name, query in seeded.queries.reads().items()
            }
        finally:
            for table in tables:
                await connection.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    finally:
        await connection.close()
    log(f"{'query':14} {'RLS on ms':>10} {'RLS off ms':>11} {'on/off':>7}")
    for name in on:
        log(f"{name:14} {on[name]:10.3f} {off[name]:11.3f} {on[name] / off[name]:6.2f}x")


# --- the run ---------------------------------------------------------------------------------


def app_token(port: int, email: str) -> str:
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/auth/login",
        json={"username": email, "password": SEED_PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def run(
    mode: Mode,
    workers: int,
    clients: int,
    keep: bool,
    superuser_url: str,
    explain_only: bool = False,
) -> None:
    started = time.perf_counter()
    database = pgdb.create(superuser_url)
    log(
        f"database {database.name} (app role {database.app_role}); {workers} server workers, "
        f"{clients} clients, {os.cpu_count()} cores"
    )
    try:
        small, large = seed(database, mode)
        explain_report(database, small, large)
        asyncio.run(rls_cost(database, large, mode.rls_runs))
        if not explain_only:
            with tempfile.TemporaryDirectory(prefix="cf-bench-") as folder:
                measure_servers(database, Path(folder), mode, workers, clients, small, large)
    finally:
        if keep:
            log(f"kept database {database.name}")
        else:
            pgdb.drop(database)
    log(f"\ntotal {time.perf_counter() - started:.0f} s")


def measure_servers(
    database: pgdb.BenchDatabase,
    workdir: Path,
    mode: Mode,
    workers: int,
    clients: int,
    small: Seeded,
    large: Seeded,
) -> None:
    environment = app_environment(database, workdir)
    hash_settings = _hash_settings(mode)
    environment.update({name.upper(): str(value) for name, value in hash_settings.items()})
    app_settings = database.settings(**hash_settings)
    limiter = "Redis" if "REDIS_URL" in environment else "in-process memory"
    config = workdir / "reference.pickle"
    secret = secrets.token_urlsafe(32)
    slot_start, slot_end = _overlap_slot(small)
    config.write_bytes(
        pickle.dumps(
            {
                "dsn": database.app_dsn,
                "queries": small.queries.reads(),
                "jwt_secret": secret,
                "tenant_id": small.practice.tenant_id,
                "overlap_professional": small.practice.professional_ids[0],
                "overlap_slot": (slot_start, slot_end),
                "availability_window": (small.week, small.week + timedelta(days=7)),
                "hash_memory_kib": app_settings.password_hash_memory_kib,
                "hash_time_cost": app_settings.password_hash_time_cost,
                "hash_parallelism": app_settings.password_hash_parallelism,
            }
        )
    )
    reference_env = {
        **environment,
        "BENCH_REFERENCE_CONFIG": str(config),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    app_command = [str(BIN / "clinicflow"), "serve", "--workers", str(workers)]
    reference_command = [
        str(BIN / "uvicorn"),
        "bench.reference_app:app",
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with (
        served(app_command, environment, workdir, "app") as app_port,
        served(reference_command, reference_env, workdir, "reference") as ref_port,
    ):
        log(f"\n== Throughput: {small.patients:,}-patient practice, rate limiter on ({limiter}) ==")
        small.token = app_token(app_port, small.practice.owner_email)
        large.token = app_token(app_port, large.practice.owner_email)
        ref_token = jwt.encode({"tid": str(small.practice.tenant_id)}, secret, algorithm="HS256")
        reads = app_reads(small)
        rows = ThroughputTable()
        tenant = small.practice.tenant_id
        for name in ("list", "search", "agenda", "availability"):
            statements = [small.queries.reads()[name].statements()]
            ref_request: HttpRequest = (
                "GET",
                f"/ref/read/{name}",
                {"Authorization": f"Bearer {ref_token}"},
                b"",
            )
            check_same_answers(
                name, app_port, reads[name], ref_port, ref_request, database.app_dsn, small
            )
            measured = interleaved(
                {
                    "raw": lambda seconds, warm, statements=statements: measure_sql(
                        database.app_dsn, tenant, statements, clients, seconds
                    ),
                    "reference": lambda seconds, warm, request=ref_request: measure_http(
                        ref_port, [request], clients, seconds, warm=warm
                    ),
                    "app": lambda seconds, warm, name=name: measure_http(
                        app_port, [reads[name]], clients, seconds, warm=warm
                    ),
                },
                mode.seconds,
            )
            for backend, sample in measured.items():
                rows.append(Row(name, backend, sample))
        rows.append(
            Row(
                "create appt",
                "raw",
                measure_sql(
                    database.app_dsn, tenant, raw_creates(small, 2040), clients, mode.seconds
                ),
            )
        )
        rows.append(
            Row(
                "create appt",
                "reference",
                measure_http(
                    ref_port,
                    app_creates(small, "/ref/appointments", ref_token, 2041),
                    clients,
                    mode.seconds,
                    cycle=False,
                ),
            )
        )
        rows.append(
            Row(
                "create appt",
                "app",
                measure_http(
                    app_port,
                    app_creates(small, "/api/v1/appointments", small.token, 2042),
                    clients,
                    mode.seconds,
                    cycle=False,
                ),
            )
        )
        emails = list(small.practice.professional_emails)
        rows.append(
            Row(
                "login",
                "reference",
                measure_http(ref_port, login_requests(emails, "/ref/login"), clients, mode.seconds),
            )
        )
        rows.append(
            Row(
                "login",
                "app",
                measure_http(
                    app_port, login_requests(emails, "/api/v1/auth/login"), clients, mode.seconds
                ),
            )
        )

        log(
            f"\n== Scale: the app at {small.patients:,} vs {large.patients:,} patients "
            f"({clients} clients) =="
        )
        log(
            f"{'path':14} {'small p50':>10} {'small p99':>10} {'large p50':>10} "
            f"{'large p99':>10} {'p50 ratio':>10}"
        )
        large_reads = app_reads(large)
        scaled = ("list", "list_deep", "search", "search_rare")
        for name in (*scaled, "search_first", "search_two"):
            at_small = measure_http(app_port, [reads[name]], clients, mode.scale_seconds)
            at_large = measure_http(app_port, [large_reads[name]], clients, mode.scale_seconds)
            log(
                f"{name:14} {at_small.quantile(0.5):10.2f} {at_small.quantile(0.99):10.2f} "
                f"{at_large.quantile(0.5):10.2f} {at_large.quantile(0.99):10.2f} "
                f"{at_large.quantile(0.5) / at_small.quantile(0.5):9.2f}x"
            )

        read_rate = mode.read_share * rows.samples["list"]["app"].rate
        log(
            f"\n== Reads while {mode.login_rate:g} logins/s run (argon2 {hash_cost(mode)}); "
            f"list paced at {read_rate:.0f} req/s ({mode.read_share:.0%} of its throughput) =="
        )
        reads_under_logins(app_port, reads["list"], emails, clients, mode, read_rate)


def reads_under_logins(
    port: int, read: HttpRequest, emails: list[str], clients: int, mode: Mode, read_rate: float
) -> None:
    """Idle and busy (logins running) rounds alternate, so a slow spell of the machine (its
    CPU speed drifts by tens of percent over minutes) lands on both sides; each round's p99 is
    printed, and the median of the rounds' ratios is the figure."""
    ratios = []
    for round_number in range(1, mode.login_rounds + 1):
        idle = _run(paced_reads(port, read, clients, mode.seconds, read_rate))
        logins = loadgen.http(
            port,
            login_requests(emails * 50, "/api/v1/auth/login"),
            # Enough that the rate is met with logins taking up to a second and a half each:
            # with 8, logins answering in 400 ms held the rate at 16-18/s.
            clients=32,
            seconds=mode.seconds + 1,
            rate=mode.login_rate,
        )
        time.sleep(0.5)
        busy = _run(paced_reads(port, read, clients, mode.seconds, read_rate))
        login_sample = _run(logins)
        ratios.append(busy.quantile(0.99) / idle.quantile(0.99))
        log(
            f"round {round_number}: list p99 idle {idle.quantile(0.99):.2f} ms (p50 "
            f"{idle.quantile(0.5):.2f}); with {login_sample.rate:.1f} logins/s "
            f"{busy.quantile(0.99):.2f} ms (p50 {busy.quantile(0.5):.2f}): {ratios[-1]:.2f}x "
            f"idle; login p50 {login_sample.quantile(0.5):.0f} ms "
            f"p99 {login_sample.quantile(0.99):.0f} ms"
        )
        if login_sample.rate < 0.9 * mode.login_rate:
            log(f"    ! logins ran below {mode.login_rate:g}/s: this round understates them")
    log(f"median of {len(ratios)} rounds: list p99 {statistics.median(ratios):.2f}x idle")


def paced_reads(
    port: int, request: HttpRequest, clients: int, seconds: float, rate: float
) -> loadgen.Running:
    """An offered load below capacity (open loop): its latency is a read's service time plus
    what else the server runs, not a queue of saturating clients."""
    return loadgen.http(port, [request], clients=clients, seconds=seconds, rate=rate)


def hash_cost(mode: Mode) -> str:
    if mode.password_hash is None:
        return "the app's default cost"
    memory_kib, time_cost = mode.password_hash
    return f"m={memory_kib} KiB, t={time_cost}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--long", action="store_true", help="10k vs 1M patients, longer runs")
    parser.add_argument("--workers", type=int, default=2, help="server processes (each)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--seconds", type=float, help="per measurement (default by mode)")
    parser.add_argument("--login-rate", type=float, default=20.0, help="logins/s while reading")
    parser.add_argument(
        "--password-hash",
        metavar="MEMORY_KIB:TIME_COST",
        help="argon2 cost of the seeded logins and the app (default: the app's, OWASP's "
        "19456:2); 65536:3 is RFC 9106's second choice",
    )
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    parser.add_argument("--superuser-url", default=pgdb.SUPERUSER_URL)
    parser.add_argument(
        "--explain-only",
        action="store_true",
        help="seed, EXPLAIN the hot queries and time RLS; skip the servers and throughput",
    )
    args = parser.parse_args()
    mode = LONG if args.long else SHORT
    if args.seconds:
        mode = replace(mode, seconds=args.seconds, scale_seconds=args.seconds)
    mode = replace(mode, login_rate=args.login_rate)
    if args.password_hash:
        memory_kib, _, time_cost = args.password_hash.partition(":")
        mode = replace(mode, password_hash=(int(memory_kib), int(time_cost)))
    run(mode, args.workers, args.clients, args.keep_database, args.superuser_url, args.explain_only)


if __name__ == "__main__":
    main()
