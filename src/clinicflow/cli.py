"""The `clinicflow` command line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from alembic.util.exc import CommandError
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from clinicflow.core import migrate
from clinicflow.core.crypto import EncryptionConfigError, KeyRing
from clinicflow.core.rls import AppRoleError
from clinicflow.core.settings import Settings, SettingsError, get_settings

# Mistakes of configuration or environment, reported as one line (anything else is a bug and
# keeps its traceback).
OPERATOR_ERRORS = (
    ValidationError,
    SettingsError,
    EncryptionConfigError,
    AppRoleError,
    CommandError,
    SQLAlchemyError,
    OSError,
)

app = typer.Typer(
    help="ClinicFlow: multi-tenant backend for health practices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations (run as the owner role).", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
records_app = typer.Typer(
    help="Encryption at rest: medical records, webhook secrets, n8n keys, queued messages.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")
app.add_typer(records_app, name="records")
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # one line, however narrow the terminal


def main() -> None:
    """Entry point: an operator's mistake (a setting, a key, a role, an unreachable database)
    is one line on stderr and exit status 2, never a traceback."""
    try:
        app()
    except OPERATOR_ERRORS as error:
        errors.print(f"[red]clinicflow: {_one_line(error)}[/red]", highlight=False)
        sys.exit(2)


def _one_line(error: BaseException) -> str:
    if isinstance(error, ValidationError):  # settings: name each bad variable
        return "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']).upper() or 'settings'}: "
            f"{problem['msg'].removeprefix('Value error, ')}"
            for problem in error.errors()
        )
    if isinstance(error, EncryptionConfigError):
        return f"ENCRYPTION_KEYS: {_first_line(error)}"
    if isinstance(error, SQLAlchemyError) and _NOT_MIGRATED.search(str(error)):
        return "the database has no ClinicFlow tables yet: run `clinicflow db upgrade` first"
    if isinstance(error, DBAPIError) and error.statement is not None:
        return f"the database refused ({type(error).__name__}): {_first_line(error)}"
    if isinstance(error, SQLAlchemyError | ConnectionError | TimeoutError | socket.gaierror):
        return f"cannot reach the database ({type(error).__name__}): {_first_line(error)}"
    return _first_line(error)  # a file or folder: the OS's own words name it


RLS_ROLE = (
    "row-level security would not apply; connect as the app role `clinicflow db upgrade` "
    "grants (APP_DB_ROLE)"
)
_NOT_MIGRATED = re.compile(r"no such table|relation \"[a-z_]+\" does not exist")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes (default: 1 on SQLite; else WEB_CONCURRENCY; else one per "
            "core, 2-4, in production with Redis; else 1).",
            show_default=False,
            min=1,
        ),
    ] = None,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development).")] = False,
) -> None:
    """Serve the API (the embedded SQLite database when DATABASE_URL is not set)."""
    # Checked here, once, so that a bad setting is one line instead of a traceback per worker.
    settings = get_settings()
    keys = KeyRing.from_setting(settings.encryption_keys.get_secret_value())
    _migrate_embedded(settings)
    asyncio.run(_preflight(settings, keys))
    workers = workers or settings.api_workers
    with _shared_metrics(workers):
        _run_uvicorn(settings, host, port, workers, reload)


def _migrate_embedded(settings: Settings) -> None:
    """The embedded default is the server's own file: `clinicflow serve` (and `seed`) with
    nothing set run (SPEC §5). PostgreSQL is migrated by its owner role, `clinicflow db
    upgrade`."""
    if not settings.is_postgres:
        migrate.upgrade(settings)


async def _preflight(settings: Settings, keys: KeyRing) -> None:
    """Refuse to start where requests would fail or be unsafe: a PostgreSQL role row-level
    security does not bind (production; a warning elsewhere), or data sealed with a key the
    server lacks (a record read answers 503, a webhook delivery is dead, a queued e-mail is
    dead)."""
    from clinicflow.core.database import create_database
    from clinicflow.core.rls import privileges_past_rls
    from clinicflow.keyrotation import describe_missing, missing_keys

    database = create_database(settings)
    try:
        if settings.is_postgres:
            async with database.engine.connect() as connection:
                unsafe = await connection.run_sync(privileges_past_rls)
            if unsafe and settings.environment == "production":
                raise AppRoleError(f"DATABASE_URL connects as a role that {unsafe}: {RLS_ROLE}")
            if unsafe:
                errors.print(f"[yellow]clinicflow: warning: the role {unsafe}: {RLS_ROLE}[/]")
        missing = await missing_keys(database, keys)
    finally:
        await database.dispose()
    if missing:
        raise EncryptionConfigError(
            f"data is sealed with keys missing from the list: {describe_missing(missing)}; add "
            "them back (rotate-key re-seals everything with the first key, after which old keys "
            "can go)"
        )


@contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """Several workers write their metrics to files in one fresh directory, which /metrics adds
    up, so a scrape counts every process whichever worker answers it."""
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="clinicflow-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by the workers
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _run_uvicorn(settings: Settings, host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

    from clinicflow.core.logging import uvicorn_log_config

    uvicorn.run(
        "clinicflow.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        access_log=False,  # the app writes its own JSON access line with the request id
        log_config=uvicorn_log_config(settings.log_level, json=settings.log_json),
        proxy_headers=False,  # X-Forwarded-For is believed only from TRUSTED_PROXIES (the app)
    )


@app.command()
def worker() -> None:
    """Deliver queued e-mails and webhooks; run as many as you like, on any machines."""
    import signal

    from clinicflow.core.crypto import KeyRing
    from clinicflow.core.database import create_database
    from clinicflow.core.logging import configure_logging
    from clinicflow.notifications.delivery import mailer_from_settings
    from clinicflow.notifications.outbox import Worker

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    key_ring = KeyRing.from_setting(settings.encryption_keys.get_secret_value())
    # Like serve: a queued message sealed with a key this worker lacks would be dead-lettered.
    asyncio.run(_preflight(settings, key_ring))

    async def run() -> None:
        database = create_database(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await Worker(
                database.sessionmaker, key_ring, mailer_from_settings(settings), settings
            ).run(stop)
        finally:
            await database.dispose()

    asyncio.run(run())


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations, then grant the application role (APP_DB_ROLE) on PostgreSQL."""
    migrate.upgrade(get_settings(), revision)
    console.print(f"[green]Database upgraded to {revision}.[/green]")


# ignore_unknown_options: `-1` is a revision here, not an option.
@db_app.command("downgrade", context_settings={"ignore_unknown_options": True})
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")]) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(get_settings(), revision)
    console.print(f"[green]Database downgraded to {revision}.[/green]")


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision."""
    migrate.current(get_settings())


@db_app.command("history")
def db_history() -> None:
    """List the migrations."""
    migrate.history(get_settings())


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m")],
    autogenerate: Annotated[bool, typer.Option("--autogenerate")] = False,
) -> None:
    """Create a migration (compare the models with the database with --autogenerate)."""
    migrate.revision(get_settings(), message, autogenerate=autogenerate)


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrated database have drifted apart."""
    migrate.check(get_settings())
    console.print("[green]No drift between models and migrations.[/green]")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True)],
    full_name: Annotated[str, typer.Option(prompt=True)] = "Platform administrator",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create a platform admin (prompts for what is not given)."""
    from clinicflow.audit.service import Actor
    from clinicflow.core.database import committed, create_database
    from clinicflow.core.errors import ClinicFlowError
    from clinicflow.core.security import hasher_for
    from clinicflow.users.service import create_account

    settings = get_settings()

    async def run() -> None:
        database = create_database(settings)
        try:
            async with committed(database) as session:
                await create_account(
                    session, hasher_for(settings), email=email, password=password,
                    full_name=full_name, is_platform_admin=True, actor=Actor(), via="cli",
                )  # fmt: skip
        finally:
            await database.dispose()

    try:
        asyncio.run(run())
    except ClinicFlowError as error:
        console.print(f"[red]{error.detail}[/red]")
        raise typer.Exit(1) from error
    console.print(f"[green]Platform admin {email} created.[/green]")


@app.command()
def seed(
    force: Annotated[
        bool, typer.Option(help="Seed even when ENVIRONMENT=production (demo passwords!).")
    ] = False,
    tenants: Annotated[
        int | None, typer.Option(min=1, help="Bulk: this many practices (benchmark data).")
    ] = None,
    patients_per_tenant: Annotated[int, typer.Option(min=0, help="Bulk: patients each.")] = 0,
    appointments_per_patient: Annotated[
        int, typer.Option(min=0, help="Bulk: appointments per patient.")
    ] = 0,
    professionals: Annotated[
        int, typer.Option(min=1, help="Bulk: professionals (owners) per practice.")
    ] = 1,
) -> None:
    """Create demo data: a platform admin and two practices with an owner, assistant, viewer.

    With --tenants: bulk benchmark data instead (COPY on PostgreSQL), with a progress bar."""
    from clinicflow.bootstrap import DEMO_PASSWORD, seed_demo
    from clinicflow.core.database import create_database

    settings = get_settings()
    if settings.environment == "production" and not force:
        errors.print(
            "[red]clinicflow: refusing to seed a production database: the demo accounts "
            "(a platform admin among them) share a published password. Use --force to insist."
            "[/red]"
        )
        raise typer.Exit(2)
    _migrate_embedded(settings)
    if tenants is not None:
        _seed_bulk(settings, tenants, patients_per_tenant, appointments_per_patient, professionals)
        return

    async def run() -> list[tuple[str, str, str]]:
        database = create_database(settings)
        try:
            with console.status("Seeding demo data…") as status:
                logins = await seed_demo(
                    database, settings, progress=lambda name: status.update(f"Seeding {name}…")
                )
        finally:
            await database.dispose()
        return [(login.role, login.email, login.tenant or "(platform)") for login in logins]

    table = Table(title=f"Demo logins (password: {DEMO_PASSWORD})")
    for column in ("role", "login", "practice"):
        table.add_column(column)
    for row in asyncio.run(run()):
        table.add_row(*row)
    console.print(table)


def _seed_bulk(
    settings: Settings, tenants: int, patients: int, appointments: int, professionals: int
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from clinicflow.bulkseed import BulkPlan, seed_bulk

    try:
        plan = BulkPlan(tenants, patients, appointments, professionals)
    except ValueError as error:
        errors.print(f"[red]clinicflow: {error}[/red]")
        raise typer.Exit(2) from error

    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console,
    ) as bars:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        class Shown:
            def start(self, kind: str, total: int) -> None:
                tasks[kind] = bars.add_task(kind, total=total)

            def advance(self, kind: str, rows: int) -> None:
                bars.advance(tasks[kind], rows)

        result = asyncio.run(seed_bulk(settings, plan, Shown()))
    console.print(
        f"Seeded {len(result.practices)} practices, {result.patients} patients, "
        f"{result.appointments} appointments in {result.seconds:.1f} s."
    )
    console.print(f"Log in with any of these (password: {result.password}):")
    for practice in result.practices[:5]:
        console.print(
            f"  {practice.name} ({practice.tenant_id}): owner {practice.owner_email}, "
            f"front desk {practice.assistant_email}",
            highlight=False,
            soft_wrap=True,
        )
    if len(result.practices) > 5:
        console.print(f"  … and {len(result.practices) - 5} more practices named alike.")


@app.command()
def openapi(
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """Print the OpenAPI document."""
    from clinicflow.main import create_app

    document = json.dumps(create_app(get_settings()).openapi(), indent=2)
    if output:
        output.write_text(document + "\n")
    else:
        typer.echo(document)


@audit_app.command("verify")
def audit_verify(
    heads_file: Annotated[
        Path | None,
        typer.Option(
            help="Signed chain heads to check against (default: AUDIT_HEAD_FILE). It must "
            "exist: a file that does not is an error (exit 2)."
        ),
    ] = None,
) -> None:
    """Check every audit chain against the audit key and the exported heads; name the first
    broken link (exit 1) if there is one.

    Heads come from --heads-file, else from AUDIT_HEAD_FILE, which like the server's is relative
    to the current directory. When AUDIT_HEAD_FILE does not exist (nothing exported yet, or run
    from another directory than the server's), the chains are still checked and verify says
    where it looked, on stdout and as a warning on stderr, but does not fail: a deleted tail
    then goes unnoticed, so pass --heads-file where that must not happen (a scheduled check).
    With AUDIT_HEAD_FILE empty (heads go to the log only), no heads are checked.

    Exit status: 0 intact; 1 a broken link or a head line whose signature fails; 2 an operator
    error (a --heads-file that does not exist or cannot be read, a bad setting)."""
    from clinicflow.audit.heads import latest_heads
    from clinicflow.audit.verify import VerifyReport, verify_all
    from clinicflow.core.database import create_database

    settings = get_settings()
    key = settings.audit_hmac_key.get_secret_value().encode()
    if heads_file is not None and not heads_file.is_file():
        problem = "not a file" if heads_file.exists() else "no such file"
        _operator_error(f"--heads-file {heads_file}: {problem}")
    source = heads_file or settings.audit_head_file
    looked = source.absolute() if source else None
    try:
        exported, forged = latest_heads(key, source) if source else ({}, 0)
    except OSError as error:
        _operator_error(f"cannot read the heads file {looked}: {error.strerror or error}")
    if forged:
        console.print(
            escape(f"{forged} exported heads in {looked} fail their signature."),
            style="red", soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(1)

    async def run() -> VerifyReport:
        database = create_database(settings)
        try:
            async with database.sessionmaker() as session:
                return await verify_all(session, exported)
        finally:
            await database.dispose()

    report = asyncio.run(run())
    if report.broken:
        link = report.broken
        console.print(
            f"[red]Broken link in chain {link.chain} at event {link.seq}: {link.reason}[/red]"
        )
        raise typer.Exit(1)
    if looked is None:
        checked = "no exported heads checked: AUDIT_HEAD_FILE is empty"
    elif not looked.exists():  # only the configured default can be missing by now
        checked = f"no exported heads found at {looked}: a deleted tail was not checked"
        errors.print(
            escape(
                f"clinicflow: warning: no exported heads found at {looked} (AUDIT_HEAD_FILE, "
                "relative to the current directory); give the file the server writes with "
                "--heads-file"
            ),
            style="yellow", highlight=False,
        )  # fmt: skip
    else:
        checked = f"{len(exported)} exported heads checked, from {looked}"
    console.print(
        escape(f"{report.events} events in {report.chains} chains: intact ({checked})."),
        style="green", soft_wrap=True, highlight=False,
    )  # fmt: skip


def _operator_error(message: str) -> NoReturn:
    """A mistake of the operator's: one line on stderr, exit status 2 (as main() reports)."""
    errors.print(escape(f"clinicflow: {message}"), style="red", highlight=False)
    raise typer.Exit(2)


@records_app.command("new-key")
def records_new_key(key_id: Annotated[str, typer.Argument(help="e.g. 2026-11")]) -> None:
    """Print a new ENCRYPTION_KEYS entry: put it first, keep the old ones, restart the servers
    and workers, then rotate-key; only then drop the old ones."""
    from clinicflow.core.crypto import generate_key_entry

    typer.echo(generate_key_entry(key_id))


@records_app.command("rotate-key")
def records_rotate_key() -> None:
    """Re-seal everything sealed at rest with an older key (record versions, webhook secrets,
    n8n API keys, queued messages) with the first (active) key, after which old keys can go."""
    from clinicflow.core.crypto import KeyRing
    from clinicflow.core.database import create_database
    from clinicflow.keyrotation import describe_missing, missing_keys, reseal_all

    settings = get_settings()
    keys = KeyRing.from_setting(settings.encryption_keys.get_secret_value())

    async def run() -> dict[str, int]:
        database = create_database(settings)
        try:
            # What a key no longer listed sealed cannot be opened, so cannot be re-sealed.
            if missing := await missing_keys(database, keys):
                raise EncryptionConfigError(
                    f"cannot re-seal, keys are missing from the list: "
                    f"{describe_missing(missing)}; add them back after the first key"
                )
            return await reseal_all(database, keys)
        finally:
            await database.dispose()

    counts = asyncio.run(run())
    console.print(f"[green]Re-sealed with key {keys.active_key_id!r}:[/green]")
    for label, count in counts.items():
        console.print(f"  {count} {label}")
    console.print("Nothing sealed at rest needs an older key now; the old keys can go.")
