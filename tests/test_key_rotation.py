"""Key rotation as documented: add a new first key, `records rotate-key`, drop the old key.
Everything sealed at rest is re-sealed (record versions, webhook secrets, n8n API keys, queued
messages), so the practice keeps booking, signing webhooks and sending mail with the new key
alone; a server or worker missing a key something still needs refuses to start, in one line."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from clinicflow.cli import app as cli
from clinicflow.core.crypto import Ciphertext, KeyRing, generate_key_entry
from clinicflow.core.settings import Settings, get_settings
from clinicflow.core.tenancy import tenant_context
from clinicflow.integrations.models import N8nConnection
from clinicflow.integrations.service import _aad as n8n_aad
from clinicflow.notifications.mailer import EmailMessageSpec
from clinicflow.notifications.models import OutboxMessage, OutboxStatus
from clinicflow.records.models import RecordVersion
from clinicflow.webhooks.models import WebhookSubscription
from tests import documented_statuses
from tests.conftest import PgTestDatabase
from tests.factories import Member, deliver_outbox, make_member
from tests.mailtools import Inbox, Receiver, running_inbox, running_receiver
from tests.served import CLINICFLOW, server_environment

NOTE = "the patient asked about the elevator again"
N8N_KEY = "n8n-api-key-of-the-practice"
NEW = generate_key_entry("k2027")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    yield from running_inbox()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


@asynccontextmanager
async def app_with(settings: Settings, keys: str, inbox: Inbox) -> AsyncIterator[FastAPI]:
    """A server (and its worker) started with ENCRYPTION_KEYS=`keys`, mailing to `inbox`."""
    from clinicflow.main import create_app

    app = create_app(
        settings.model_copy(
            update={
                "encryption_keys": SecretStr(keys),
                "smtp_host": "127.0.0.1",
                "smtp_port": inbox.port,
                "smtp_tls": "none",
            }
        )
    )
    async with app.router.lifespan_context(app):
        yield app


async def call(
    app: FastAPI, method: str, path: str, member: Member, **kw: object
) -> httpx.Response:
    transport = httpx.ASGITransport(app=documented_statuses.recording(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.request(method, f"/api/v1{path}", headers=member.headers, **kw)  # type: ignore[arg-type]


def signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in headers["X-ClinicFlow-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


async def seal_n8n_key(app: FastAPI, owner: Member) -> None:
    """An n8n connection, as PUT /integrations/n8n stores it (without asking an n8n)."""
    async with (
        app.state.database.sessionmaker() as session,
        session.begin(),
        tenant_context(session, owner.tenant_id),
    ):
        connection = N8nConnection(
            tenant_id=owner.tenant_id, base_url="http://127.0.0.1:9", api_key_key_id="",
            api_key=b"",
        )  # fmt: skip
        session.add(connection)
        await session.flush()
        sealed = app.state.key_ring.encrypt(N8N_KEY, aad=n8n_aad(connection))
        connection.api_key_key_id, connection.api_key = sealed.key_id, sealed.blob


async def practice_sealed_with_the_old_key(
    app: FastAPI, inbox: Inbox, receiver: Receiver
) -> tuple[Member, dict[str, str], str, str]:
    """What the tester had: a record, a webhook, an n8n key, and mail and deliveries queued
    but not yet sent, all sealed with the only key there was (the test settings' one)."""
    owner = await make_member(app, role="owner")
    hook = await call(
        app, "POST", "/webhooks", owner,
        json={"url": receiver.url, "events": ["patient.created", "appointment.created"]},
    )  # fmt: skip
    patient = await call(app, "POST", "/patients", owner, json={"full_name": "Rita"})
    record = await call(
        app, "POST", f"/patients/{patient.json()['id']}/records", owner, json={"content": NOTE}
    )
    assert (record.status_code, hook.status_code) == (201, 201), (record.text, hook.text)
    await seal_n8n_key(app, owner)
    async with app.state.database.sessionmaker() as session, session.begin():
        app.state.outbox.queue_email(
            session,
            EmailMessageSpec(to="rita@example.com", subject="queued before", text="t", html="h"),
        )
    return owner, hook.json(), patient.json()["id"], record.json()["id"]


def rotate_key(pg_database: PgTestDatabase, keys: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", keys)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["records", "rotate-key"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


async def key_ids_in_use(app: FastAPI, owner: Member) -> set[str]:
    async with app.state.database.sessionmaker() as session:
        pending = await session.scalars(
            select(OutboxMessage.payload_key_id).where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        found = set(pending)
        async with tenant_context(session, owner.tenant_id):
            for column in (
                RecordVersion.key_id,
                WebhookSubscription.secret_key_id,
                N8nConnection.api_key_key_id,
            ):
                found |= set(await session.scalars(select(column)))
    return found


async def test_after_rotate_key_the_old_key_can_go_and_the_practice_keeps_working(
    db: FastAPI,
    settings: Settings,
    pg_database: PgTestDatabase,
    inbox: Inbox,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = settings.encryption_keys.get_secret_value()
    owner, hook, patient, record = await practice_sealed_with_the_old_key(db, inbox, receiver)
    async with db.state.database.sessionmaker() as session:
        queued = len(
            list(
                await session.scalars(
                    select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)
                )
            )
        )
    assert queued >= 2  # the e-mail, the patient.created delivery

    output = await asyncio.to_thread(rotate_key, pg_database, f"{NEW},{old}", monkeypatch)
    assert "Re-sealed with key 'k2027'" in output
    for line in (
        "1 record versions",
        "1 webhook secrets",
        "1 n8n API keys",
        f"{queued} queued messages",
    ):
        assert line in output, output
    assert await key_ids_in_use(db, owner) == {"k2027"}
    again = await asyncio.to_thread(rotate_key, pg_database, f"{NEW},{old}", monkeypatch)
    assert "0 record versions" in again  # nothing left to do

    # Restarted with the new key only: nothing needs the old one.
    async with app_with(settings, NEW, inbox) as app:
        booked = await call(
            app, "POST", "/appointments", owner,
            json={"patient_id": patient, "start": "2030-03-09T09:00:00-03:00"},
        )  # fmt: skip
        assert booked.status_code == 201, booked.text
        ping = await call(app, "POST", f"/webhooks/{hook['id']}/ping", owner)
        assert ping.status_code == 202, ping.text
        read = await call(app, "GET", f"/records/{record}", owner)
        assert read.json()["content"] == NOTE
        await deliver_outbox(app)
        async with app.state.database.sessionmaker() as session:
            statuses = set(await session.scalars(select(OutboxMessage.status)))
            async with tenant_context(session, owner.tenant_id):
                connection = (await session.scalars(select(N8nConnection))).one()
        n8n_key = app.state.key_ring.decrypt(
            Ciphertext(connection.api_key_key_id, connection.api_key), aad=n8n_aad(connection)
        )

    assert statuses == {OutboxStatus.SENT}
    assert inbox.subjects() == ["queued before"]
    events = sorted(json.loads(body)["type"] for _, body in receiver.requests)
    assert events == ["appointment.created", "patient.created", "webhook.ping"]
    assert all(signed_by(hook["secret"], headers, body) for headers, body in receiver.requests)
    assert n8n_key == N8N_KEY


def old_key_id(settings: Settings) -> str:
    return KeyRing.from_setting(settings.encryption_keys.get_secret_value()).active_key_id


def run_cli(pg_database: PgTestDatabase, tmp_path: Path, keys: str, *args: str) -> list[str]:
    environment = server_environment(pg_database.app_url, tmp_path, ENCRYPTION_KEYS=keys)
    result = subprocess.run(  # noqa: S603  (our own CLI)
        [CLINICFLOW, *args], cwd=tmp_path, env=environment, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines


async def test_serve_worker_and_rotate_key_refuse_while_something_needs_a_missing_key(
    db: FastAPI, settings: Settings, pg_database: PgTestDatabase, inbox: Inbox,
    receiver: Receiver, tmp_path: Path,
) -> None:  # fmt: skip
    """The old key dropped without rotate-key (or a server started with the new list only):
    serve and worker name what is sealed with which missing key instead of starting to fail
    requests and dead-letter mail; rotate-key cannot re-seal without it either."""
    await practice_sealed_with_the_old_key(db, inbox, receiver)
    old = repr(old_key_id(settings))
    for command in (["serve", "--port", "1"], ["worker"]):
        [line] = await asyncio.to_thread(run_cli, pg_database, tmp_path, NEW, *command)
        assert line.startswith("clinicflow: ENCRYPTION_KEYS: data is sealed with keys missing")
        assert f"{old} seals 1 record versions (1 practice), 1 webhook secrets (1 practice)" in line
        assert "1 n8n API keys (1 practice)" in line
        assert "queued messages" in line
    [line] = await asyncio.to_thread(run_cli, pg_database, tmp_path, NEW, "records", "rotate-key")
    assert "cannot re-seal" in line
    assert old in line


async def test_an_n8n_key_no_key_opens_is_a_503_naming_it_not_a_500(
    db: FastAPI, settings: Settings, inbox: Inbox
) -> None:
    owner = await make_member(db, role="owner")
    await seal_n8n_key(db, owner)
    async with app_with(settings, NEW, inbox) as app:
        metrics = await call(app, "GET", "/metrics/me", owner)
    assert metrics.status_code == 503, metrics.text
    assert metrics.json()["missing_key_id"] == old_key_id(settings)
