"""POST/GET /notifications and appointment reminders, over a real SMTP server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from clinicflow.core.crypto import KeyRing, generate_key_entry
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from clinicflow.notifications import mailer as mailer_module
from clinicflow.notifications import outbox as outbox_module
from clinicflow.notifications.models import OutboxMessage
from clinicflow.notifications.outbox import Worker
from tests import documented_statuses
from tests.factories import Member, deliver_outbox, make_member
from tests.mailtools import Inbox, running_inbox

NOTIFICATIONS = "/api/v1/notifications"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    yield from running_inbox()


@pytest.fixture
async def smtp_app(inbox: Inbox, db: FastAPI, settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(
        settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": inbox.port, "smtp_tls": "none"}
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(smtp_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=documented_statuses.recording(smtp_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def patient(client: httpx.AsyncClient, member: Member, email: str | None) -> str:
    response = await client.post(
        "/api/v1/patients", json={"full_name": "Ana Lima", "email": email}, headers=member.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def text_of(message: object) -> str:
    parts = [
        part.get_payload(decode=True).decode()  # type: ignore[attr-defined]
        for part in message.walk()  # type: ignore[attr-defined]
        if not part.is_multipart()
    ]
    return "\n".join(parts)


async def test_an_assistant_emails_a_patient_and_sees_it_sent(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(smtp_app, role="owner")
    assistant = await make_member(smtp_app, role="assistant", tenant_id=owner.tenant_id)
    patient_id = await patient(client, owner, "ana@example.com")
    sent = await client.post(
        NOTIFICATIONS,
        json={"channel": "email", "patient_id": patient_id, "subject": "Your exam <results>",
              "text": "They are ready.\n\nCall us."},
        headers=assistant.headers,
    )  # fmt: skip
    assert sent.status_code == 202, sent.text
    [queued] = sent.json()["items"]
    assert (queued["status"], queued["recipient"], queued["kind"]) == (
        "pending", "ana@example.com", "patient_email",
    )  # fmt: skip
    assert await deliver_outbox(smtp_app) == 1
    [message] = inbox.messages
    assert message["Subject"] == "Your exam <results>"
    assert "They are ready." in text_of(message)
    assert "&lt;" not in message["Subject"]
    listed = await client.get(NOTIFICATIONS, headers=assistant.headers)
    [item] = listed.json()["items"]
    assert (item["id"], item["status"], item["attempts"]) == (queued["id"], "sent", 1)
    assert item["sent_at"] is not None


async def _email_patient(client: httpx.AsyncClient, member: Member) -> str:
    patient_id = await patient(client, member, "ana@example.com")
    sent = await client.post(
        NOTIFICATIONS,
        json={"channel": "email", "patient_id": patient_id, "subject": "s", "text": "t"},
        headers=member.headers,
    )
    assert sent.status_code == 202, sent.text
    return str(sent.json()["items"][0]["id"])


async def _notification(client: httpx.AsyncClient, member: Member, id_: str) -> dict[str, Any]:
    listed = (await client.get(NOTIFICATIONS, headers=member.headers)).json()["items"]
    [item] = [item for item in listed if item["id"] == id_]
    return dict(item)


async def test_a_message_that_cannot_be_opened_shows_it_on_the_notification(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox
) -> None:
    """Corrupt (or tampered with) in the queue: no retry can open it, so it is dead at once,
    and the practice sees that and why, not a notification pending for ever."""
    owner = await make_member(smtp_app, role="owner")
    queued = await _email_patient(client, owner)
    async with smtp_app.state.database.sessionmaker() as session, session.begin():
        row = await session.get_one(OutboxMessage, uuid.UUID(queued))
        row.payload = row.payload[:-1] + bytes([row.payload[-1] ^ 1])

    assert await deliver_outbox(smtp_app) == 1
    item = await _notification(client, owner, queued)
    assert (item["status"], item["attempts"]) == ("dead", 1)
    assert "DecryptionError" in item["last_error"]
    assert inbox.messages == []


async def test_a_message_sealed_with_a_key_the_worker_lacks_shows_the_failed_attempt(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox
) -> None:
    """A worker without the key that sealed the message (a rotation rolled out to the servers
    first): the attempt fails and is retried later, and the notification says so."""
    owner = await make_member(smtp_app, role="owner")
    queued = await _email_patient(client, owner)
    state = smtp_app.state
    keyless = KeyRing.from_setting(generate_key_entry("k-other"))
    worker = Worker(state.database.sessionmaker, keyless, state.mailer, state.settings)
    assert await worker.run_once() == 1

    item = await _notification(client, owner, queued)
    assert (item["status"], item["attempts"]) == ("pending", 1)
    assert "MissingKeyError" in item["last_error"]
    assert inbox.messages == []


async def test_bad_requests_queue_nothing(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(smtp_app, role="owner")
    other = await make_member(smtp_app, role="owner")
    no_email = await patient(client, owner, None)
    theirs = await patient(client, other, "theirs@example.com")
    for body, status in (
        ({"channel": "email", "patient_id": no_email, "subject": "s", "text": "t"}, 409),
        ({"channel": "email", "patient_id": theirs, "subject": "s", "text": "t"}, 404),
        ({"channel": "email", "patient_id": theirs, "subject": "", "text": "t"}, 422),
        ({"channel": "sms", "patient_id": theirs, "subject": "s", "text": "t"}, 422),
        ({"channel": "webhook", "event_type": "patient.exploded"}, 422),
        ({"channel": "webhook", "event_type": "appointment.cancelled"}, 422),
    ):
        response = await client.post(NOTIFICATIONS, json=body, headers=owner.headers)
        assert response.status_code == status, (body, response.text)
    assert (await client.get(NOTIFICATIONS, headers=owner.headers)).json()["items"] == []
    assert await deliver_outbox(smtp_app) == 0


async def test_another_practice_sees_none_of_ours_and_pages_are_cursored(
    client: httpx.AsyncClient, smtp_app: FastAPI
) -> None:
    owner = await make_member(smtp_app, role="owner")
    other = await make_member(smtp_app, role="owner")
    patient_id = await patient(client, owner, "ana@example.com")
    for n in range(3):
        await client.post(
            NOTIFICATIONS,
            json={"channel": "email", "patient_id": patient_id, "subject": f"n{n}", "text": "t"},
            headers=owner.headers,
        )
    first = (await client.get(NOTIFICATIONS, params={"limit": 2}, headers=owner.headers)).json()
    second = (
        await client.get(
            NOTIFICATIONS, params={"limit": 2, "cursor": first["next_cursor"]},
            headers=owner.headers,
        )
    ).json()  # fmt: skip
    subjects = [item["subject"] for item in first["items"] + second["items"]]
    assert subjects == ["n2", "n1", "n0"]
    assert second["next_cursor"] is None
    assert (await client.get(NOTIFICATIONS, headers=other.headers)).json()["items"] == []
    filtered = await client.get(NOTIFICATIONS, params={"status": "sent"}, headers=owner.headers)
    assert filtered.json()["items"] == []
    bad = await client.get(NOTIFICATIONS, params={"cursor": "nonsense"}, headers=owner.headers)
    assert bad.status_code == 404


async def set_lead(client: httpx.AsyncClient, owner: Member, minutes: int) -> None:
    response = await client.patch(
        "/api/v1/tenant", json={"reminder_lead_minutes": minutes}, headers=owner.headers
    )
    assert response.status_code == 200, response.text


async def reminders(client: httpx.AsyncClient, owner: Member) -> list[dict[str, str]]:
    listed = await client.get(NOTIFICATIONS, params={"kind": "reminder"}, headers=owner.headers)
    items: list[dict[str, str]] = listed.json()["items"]
    return items


async def test_a_reminder_is_sent_once_at_lead_time_even_with_two_workers(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(smtp_app, role="owner")
    await set_lead(client, owner, 60)
    patient_id = await patient(client, owner, "ana@example.com")
    start = datetime.now(UTC) + timedelta(minutes=60, seconds=2)
    booked = await client.post(
        "/api/v1/appointments",
        json={"patient_id": patient_id, "start": start.isoformat()},
        headers=owner.headers,
    )
    assert booked.status_code == 201, booked.text
    [planned] = await reminders(client, owner)
    due = datetime.fromisoformat(planned["scheduled_for"])
    assert abs(due - (start - timedelta(minutes=60))) < timedelta(seconds=1)
    assert await deliver_outbox(smtp_app) == 0  # not before its time
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.2)
    workers = [
        Worker(smtp_app.state.database.sessionmaker, smtp_app.state.key_ring,
               smtp_app.state.mailer, smtp_app.state.settings)
        for _ in range(2)
    ]  # fmt: skip
    claimed = await asyncio.gather(*(worker.run_once() for worker in workers))
    assert sorted(claimed) == [0, 1]
    assert await deliver_outbox(smtp_app) == 0
    [message] = inbox.messages
    assert message["To"] == "ana@example.com"
    assert "Reminder" in message["Subject"]
    [sent] = await reminders(client, owner)
    assert sent["status"] == "sent"


async def test_moving_replans_and_cancelling_drops_the_reminder(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(smtp_app, role="owner")
    await set_lead(client, owner, 24 * 60)
    patient_id = await patient(client, owner, "ana@example.com")
    start = datetime(2031, 3, 10, 12, 0, tzinfo=UTC)
    booked = await client.post(
        "/api/v1/appointments",
        json={"patient_id": patient_id, "start": start.isoformat()},
        headers=owner.headers,
    )
    appointment = booked.json()["id"]
    moved = await client.patch(
        f"/api/v1/appointments/{appointment}",
        json={"start": (start + timedelta(days=2)).isoformat()},
        headers=owner.headers,
    )
    assert moved.status_code == 200, moved.text
    planned = await reminders(client, owner)
    assert [(r["status"], r["scheduled_for"][:16]) for r in planned] == [
        ("pending", "2031-03-11T12:00"),  # the new plan: a day before the new time
        ("cancelled", "2031-03-09T12:00"),
    ]
    cancelled = await client.delete(f"/api/v1/appointments/{appointment}", headers=owner.headers)
    assert cancelled.status_code == 204
    assert {r["status"] for r in await reminders(client, owner)} == {"cancelled"}
    assert await deliver_outbox(smtp_app) == 0
    assert inbox.messages == []


async def test_no_reminder_without_a_lead_time_or_an_email(
    client: httpx.AsyncClient, smtp_app: FastAPI
) -> None:
    owner = await make_member(smtp_app, role="owner")
    with_email = await patient(client, owner, "ana@example.com")
    without = await patient(client, owner, None)
    await client.post(
        "/api/v1/appointments",
        json={"patient_id": with_email, "start": "2031-03-10T12:00:00Z"},
        headers=owner.headers,
    )
    await set_lead(client, owner, 60)
    await client.post(
        "/api/v1/appointments",
        json={"patient_id": without, "start": "2031-03-11T12:00:00Z"},
        headers=owner.headers,
    )
    assert await reminders(client, owner) == []


async def book_soon(client: httpx.AsyncClient, owner: Member, patient_id: str) -> str:
    """Half an hour from now: with a lead of an hour its reminder is due at once."""
    booked = await client.post(
        "/api/v1/appointments",
        json={"patient_id": patient_id,
              "start": (datetime.now(UTC) + timedelta(minutes=30)).isoformat()},
        headers=owner.headers,
    )  # fmt: skip
    assert booked.status_code == 201, booked.text
    return str(booked.json()["id"])


async def test_a_deleted_patient_gets_no_reminder(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(smtp_app, role="owner")
    await set_lead(client, owner, 60)
    patient_id = await patient(client, owner, "ana@example.com")
    appointment = await book_soon(client, owner, patient_id)
    assert [r["status"] for r in await reminders(client, owner)] == ["pending"]
    deleted = await client.delete(f"/api/v1/patients/{patient_id}", headers=owner.headers)
    assert deleted.status_code == 204
    assert [r["status"] for r in await reminders(client, owner)] == ["cancelled"]
    # The appointment stays on the agenda; moving it plans no reminder for a deleted patient.
    moved = await client.patch(
        f"/api/v1/appointments/{appointment}",
        json={"start": (datetime.now(UTC) + timedelta(minutes=40)).isoformat()},
        headers=owner.headers,
    )
    assert (moved.status_code, moved.json()["status"]) == (200, "scheduled")
    assert [r["status"] for r in await reminders(client, owner)] == ["cancelled"]
    assert await deliver_outbox(smtp_app) == 0
    assert inbox.messages == []


async def test_a_new_email_replans_the_reminders_to_it(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(smtp_app, role="owner")
    await set_lead(client, owner, 60)
    patient_id = await patient(client, owner, "old@example.com")
    await book_soon(client, owner, patient_id)

    async def change_email(email: str | None) -> list[tuple[str, str]]:
        changed = await client.patch(
            f"/api/v1/patients/{patient_id}", json={"email": email}, headers=owner.headers
        )
        assert changed.status_code == 200, changed.text
        return [(r["status"], r["recipient"]) for r in await reminders(client, owner)]

    assert await change_email("new@example.com") == [
        ("pending", "new@example.com"),
        ("cancelled", "old@example.com"),
    ]
    assert [status for status, _ in await change_email(None)] == ["cancelled", "cancelled"]
    assert await change_email("third@example.com") == [
        ("pending", "third@example.com"),
        ("cancelled", "new@example.com"),
        ("cancelled", "old@example.com"),
    ]
    assert await deliver_outbox(smtp_app) == 1
    [message] = inbox.messages
    assert message["To"] == "third@example.com"
    assert "Reminder" in message["Subject"]


class RecordingLogger:
    """Stands in for the structlog loggers: every call, event and fields, as one string."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def record(event: str, *args: object, **fields: object) -> None:
            self.lines.append(f"{level} {event} {args} {fields}")

        return record


async def test_the_patient_text_never_reaches_the_logs(
    client: httpx.AsyncClient, smtp_app: FastAPI, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = RecordingLogger()
    monkeypatch.setattr(outbox_module, "logger", recorder)
    monkeypatch.setattr(mailer_module, "_log", recorder)
    owner = await make_member(smtp_app, role="owner")
    patient_id = await patient(client, owner, "ana@example.com")
    inbox.refuse_next = 1  # a failed attempt is logged, with its error, never its payload
    await client.post(
        NOTIFICATIONS,
        json={"channel": "email", "patient_id": patient_id, "subject": "Results",
              "text": "Confidential: your biopsy came back clear."},
        headers=owner.headers,
    )  # fmt: skip
    while not inbox.messages:
        await deliver_outbox(smtp_app)
        await asyncio.sleep(0.5)
    logged = "\n".join(recorder.lines)
    assert "outbox.delivery_failed" in logged
    assert "mail.sent" in logged
    assert "biopsy" not in logged
