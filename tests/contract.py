"""The API contract check CI runs: schemathesis over the whole OpenAPI document, zero findings.

    python -m tests.contract [--max-examples 5] [--workers 1]

It serves ClinicFlow as production does (`clinicflow serve` on PostgreSQL, connected as the
non-superuser app role so RLS is on), seeds the demo practices, and runs `st run --checks all`
twice: as the demo owner (a bearer token) and as an API key holding every scope. Any finding fails
the run. Credentials come from tests/contract_hooks.py, which logs in again whenever a fuzzed call
(logout, logout-all, a password change) has revoked the session it was using.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clinicflow.bootstrap import DEMO_PASSWORD
from clinicflow.core import migrate
from tests.conftest import create_pg_database, drop_pg_database, make_test_settings
from tests.served import CLINICFLOW, free_port, serve, server_environment

OWNER_EMAIL = "ana@aurora.example"
SCHEMATHESIS = str(Path(sys.executable).with_name("st"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=5)
    # One worker: schemathesis's workers are threads, and hypothesis parses source with `ast`
    # while describing strategies; CPython 3.11's AST builder can then fail spuriously
    # ("AST constructor recursion depth mismatch", python/cpython#106905), seen once in CI.
    parser.add_argument("--workers", default="1", help="schemathesis workers")
    parser.add_argument("--seed", type=int, default=None, help="for a reproducible run")
    parser.add_argument("--server-log", type=Path, default=None, help="keep the server's log here")
    parser.add_argument("st_options", nargs="*", help="more `st run` options, after --")
    options = parser.parse_args()

    database = create_pg_database("contract")
    try:
        migrate.upgrade(
            make_test_settings(
                database_url=database.app_url,
                migrations_database_url=database.owner_url,
                app_db_role=database.app_role,
                app_db_password=database.password,
            )
        )
        with tempfile.TemporaryDirectory(prefix="cf-contract-") as scratch:
            workdir = Path(scratch)
            environment = server_environment(database.app_url, workdir)
            subprocess.run(  # noqa: S603  (our own CLI)
                [CLINICFLOW, "seed"], env=environment, cwd=workdir, check=True, capture_output=True
            )
            with serve(database.app_url, workdir) as served, fake_n8n() as n8n_url:
                try:
                    return _run_both(served.base_url, options, n8n_url)
                finally:
                    if options.server_log:
                        shutil.copy(served.log_path, options.server_log)
    finally:
        drop_pg_database(database)


def _run_both(base_url: str, options: argparse.Namespace, n8n_url: str) -> int:
    api_key = _create_api_key(base_url)
    failures = 0
    for label, credential in (("owner", {}), ("API key", {"CONTRACT_API_KEY": api_key})):
        print(f"\n=== schemathesis as the {label} ===", flush=True)
        failures += _schemathesis(base_url, options, {**credential, "CONTRACT_N8N_URL": n8n_url})
    return 1 if failures else 0


@contextmanager
def fake_n8n() -> Iterator[str]:
    """The practice's n8n in this run: answers its public API to any key. (Unreachable, slow
    and refusing n8n instances are tests/test_n8n_metrics.py's business.)"""

    async def workflows(_: Request) -> JSONResponse:
        return JSONResponse({"data": [{"id": "w1", "name": "Intake", "active": True}]})

    async def executions(_: Request) -> JSONResponse:
        return JSONResponse({"data": [], "nextCursor": None})

    app = Starlette(
        routes=[Route("/api/v1/workflows", workflows), Route("/api/v1/executions", executions)]
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _create_api_key(base_url: str) -> str:
    login = httpx.post(
        f"{base_url}/api/v1/auth/login",
        json={"username": OWNER_EMAIL, "password": DEMO_PASSWORD},
    )
    login.raise_for_status()
    scopes = [
        "patients:read",
        "patients:write",
        "appointments:read",
        "appointments:write",
        "availability:read",
        "metrics:read",
    ]
    created = httpx.post(
        f"{base_url}/api/v1/api-keys",
        json={"name": "contract", "scopes": scopes},
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    created.raise_for_status()
    key: str = created.json()["key"]
    return key


def _schemathesis(base_url: str, options: argparse.Namespace, credential: dict[str, str]) -> int:
    command = [
        SCHEMATHESIS,
        "run",
        f"{base_url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(options.max_examples),
        "--workers",
        options.workers,
        "--no-color",
    ]
    if options.seed is not None:
        command += ["--seed", str(options.seed)]
    command += options.st_options
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.contract_hooks",
        "CONTRACT_BASE_URL": base_url,
        "CONTRACT_USERNAME": OWNER_EMAIL,
        "CONTRACT_PASSWORD": DEMO_PASSWORD,
        **credential,
    }
    return subprocess.run(command, env=environment, check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
