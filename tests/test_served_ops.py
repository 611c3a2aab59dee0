"""What an operator sees of `clinicflow serve --workers 2`: logs without secrets or clinical
text, metrics added up across processes, and a clear answer when a record's key is missing."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import re
import subprocess
from pathlib import Path

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from clinicflow.core.crypto import generate_key_entry
from clinicflow.core.settings import DEFAULT_ENCRYPTION_KEYS, Settings
from clinicflow.main import create_app
from tests import documented_statuses
from tests.factories import DEFAULT_PASSWORD, Member, make_member
from tests.served import CLINICFLOW, Served, serve, server_environment

PATIENT_NOTE = "front-desk-note-7f3a"
APPOINTMENT_NOTE = "clinical-appointment-note-9c1e"
RECORD_TEXT = "confidential-record-text-5b2d"
ROOT_REQUESTS = 20


async def _new_key_record(settings: Settings, owner: Member) -> str:
    """A record sealed, in-process, with a key the served process does not have (as after
    `records rotate-key` while an old server still runs)."""
    rotated = f"{generate_key_entry('k2026')},{DEFAULT_ENCRYPTION_KEYS}"
    app = create_app(settings.model_copy(update={"encryption_keys": SecretStr(rotated)}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=documented_statuses.recording(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            patient = await client.post(
                "/api/v1/patients", json={"full_name": "Key Test"}, headers=owner.headers
            )
            record = await client.post(
                f"/api/v1/patients/{patient.json()['id']}/records",
                json={"content": RECORD_TEXT},
                headers=owner.headers,
            )
    assert record.status_code == 201, record.text
    record_id: str = record.json()["id"]
    return record_id


async def _exercise(served: Served, owner: Member, workdir: Path) -> dict[str, str]:
    """4xx and 5xx paths that carry secrets and clinical text; returns the secrets seen."""
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
        auth = owner.headers
        wrong = await http.post(
            "/api/v1/auth/login", json={"username": owner.email, "password": "Wrong-pass-123"}
        )
        assert wrong.status_code == 401
        login = await http.post(
            "/api/v1/auth/login", json={"username": owner.email, "password": DEFAULT_PASSWORD}
        )
        assert login.status_code == 200
        patient = await http.post(
            "/api/v1/patients", json={"full_name": "Log Patient", "notes": PATIENT_NOTE},
            headers=auth,
        )  # fmt: skip
        booking = {
            "patient_id": patient.json()["id"], "start": "2031-05-05T13:00:00Z",
            "duration_minutes": 50, "notes": APPOINTMENT_NOTE,
        }  # fmt: skip
        assert (await http.post("/api/v1/appointments", json=booking, headers=auth)).is_success
        clash = await http.post("/api/v1/appointments", json=booking, headers=auth)
        assert clash.status_code == 409
        bad = await http.post("/api/v1/patients", json={"notes": PATIENT_NOTE}, headers=auth)
        assert bad.status_code == 422
        nul = {"full_name": "Nul\u0000Byte", "notes": PATIENT_NOTE}  # the database refuses it
        assert (await http.post("/api/v1/patients", json=nul, headers=auth)).status_code >= 400
        record = await http.post(
            f"/api/v1/patients/{patient.json()['id']}/records",
            json={"content": RECORD_TEXT}, headers=auth,
        )  # fmt: skip
        assert record.status_code == 201
        key = await http.post(
            "/api/v1/api-keys", json={"name": "bot", "scopes": ["patients:read"]}, headers=auth
        )
        assert (
            await http.get("/api/v1/patients", headers={"X-API-Key": key.json()["key"]})
        ).is_success
        invited = await http.post(
            "/api/v1/invitations", json={"email": "new.member@example.com", "role": "viewer"},
            headers=auth,
        )  # fmt: skip
        assert invited.status_code == 201
    invitation_token = await _invitation_token(workdir / "outbox")
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
        looked_up = await http.get(f"/api/v1/invitations/{invitation_token}")
        assert looked_up.status_code == 200
    return {
        "password": DEFAULT_PASSWORD,
        "wrong password": "Wrong-pass-123",
        "access token": login.json()["access_token"],
        "refresh token": login.json()["refresh_token"],
        "api key": key.json()["key"],
        "invitation token": invitation_token,
        "patient note": PATIENT_NOTE,
        "appointment note": APPOINTMENT_NOTE,
        "record text": RECORD_TEXT,
    }


async def _invitation_token(outbox: Path) -> str:
    """E-mails leave after the response, so the file may take a moment to appear."""
    for _ in range(100):
        mail = await asyncio.to_thread(_read_outbox, outbox)
        if found := re.search(r"token=(cfi_[A-Za-z0-9_-]+)", mail):
            return found.group(1)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no invitation e-mail in {outbox}")


def _read_outbox(outbox: Path) -> str:
    return "".join(_text_of(path) for path in outbox.glob("*.eml"))


def _text_of(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, email.message.EmailMessage)
    return str(body.get_content())


async def test_logs_hold_no_secret_and_metrics_add_up_and_a_missing_key_is_503(
    db: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    owner = await make_member(db, role="owner")
    # The outbox worker runs inside the server here, so its lines are scanned too.
    with serve(settings.database_url, tmp_path, WORKER_IN_PROCESS="true") as served:
        secrets = await _exercise(served, owner, tmp_path)
        record_id = await _new_key_record(settings, owner)
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
            sealed = await http.get(f"/api/v1/records/{record_id}", headers=owner.headers)
            await asyncio.gather(*(http.get("/") for _ in range(ROOT_REQUESTS)))
            scrapes = [(await http.get("/metrics")).text for _ in range(4)]
        log = served.log()

    assert sealed.status_code == 503
    assert sealed.json()["missing_key_id"] == "k2026"
    assert "k2026" in sealed.json()["detail"]
    for name, secret in secrets.items():
        assert secret not in log, f"the log holds the {name}"
    assert "$argon2" not in log
    assert "[redacted]" in log  # the invitation path was logged, masked
    assert '"status": 409' in log  # the 4xx and 5xx paths above were logged
    assert '"status": 503' in log
    root_count = re.compile(
        r'clinicflow_http_requests_total\{method="GET",route="/",status="200"\} (\S+)'
    )
    for scrape in scrapes:  # whichever worker answers, it counts both workers' requests
        found = root_count.search(scrape)
        assert found is not None
        assert float(found.group(1)) == ROOT_REQUESTS


async def test_serve_refuses_to_start_without_a_key_that_sealed_records(
    db: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    owner = await make_member(db, role="owner")
    await _new_key_record(settings, owner)
    started = await asyncio.to_thread(
        subprocess.run,
        [CLINICFLOW, "serve", "--port", "1"],
        cwd=tmp_path, env=server_environment(settings.database_url, tmp_path),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert started.returncode == 2
    assert "'k2026'" in started.stderr
    assert "Traceback" not in started.stderr
