"""Webhooks: signed deliveries a receiver can verify, retries with backoff, dead deliveries,
encrypted secrets, the SSRF guard, and who may manage them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from clinicflow.core.crypto import KeyRing, generate_key_entry
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from clinicflow.notifications.models import Notification
from clinicflow.notifications.outbox import Outbox, Worker
from clinicflow.webhooks.models import WebhookSubscription
from clinicflow.webhooks.service import MAX_WEBHOOKS
from tests import documented_statuses
from tests.factories import Member, deliver_outbox, make_api_key, make_member
from tests.mailtools import Receiver, running_receiver
from tests.rebinding import PUBLIC_ADDRESS, RebindingResolver

WEBHOOKS = "/api/v1/webhooks"
ALL_EVENTS = [
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "appointment.status_changed",
    "patient.created",
    "patient.updated",
]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


@pytest.fixture
async def fast_app(db: FastAPI, settings: Settings) -> AsyncIterator[FastAPI]:
    """Retries after milliseconds instead of seconds, and gives up after 3 attempts."""
    app = create_app(
        settings.model_copy(
            update={
                "outbox_max_attempts": 3,
                "outbox_backoff_base_seconds": 0.01,
                "outbox_backoff_max_seconds": 0.02,
            }
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(fast_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=documented_statuses.recording(fast_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@asynccontextmanager
async def production_client(
    settings: Settings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app in production (webhooks only to public addresses) and a client of it."""
    app = create_app(settings.model_copy(update={"environment": "production"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=documented_statuses.recording(app))
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
            yield app, client


async def subscribe(
    client: httpx.AsyncClient, owner: Member, url: str, events: list[str] | None = None
) -> dict[str, str]:
    response = await client.post(
        WEBHOOKS, json={"url": url, "events": events or ALL_EVENTS}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def deliver_until(app: FastAPI, done: object, rounds: int = 200) -> None:
    """Run the worker (retries included) until `done()`; backoff here is milliseconds."""
    for _ in range(rounds):
        await deliver_outbox(app)
        if done():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def verify(secret: str, headers: dict[str, str], body: bytes) -> dict[str, object]:
    """What a receiver does (SPEC §6): recompute the HMAC, refuse a stale timestamp."""
    fields = dict(part.split("=", 1) for part in headers["X-ClinicFlow-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"])
    assert abs(time.time() - int(fields["t"])) < 300
    event: dict[str, object] = json.loads(body)
    return event


async def test_a_receiver_verifies_the_signature_of_each_event(
    client: httpx.AsyncClient, fast_app: FastAPI, receiver: Receiver
) -> None:
    owner = await make_member(fast_app, role="owner")
    hook = await subscribe(client, owner, receiver.url)
    assert hook["secret"].startswith("whsec_")
    patient = await client.post(
        "/api/v1/patients",
        json={"full_name": "Ana", "email": "ana@example.com"},
        headers=owner.headers,
    )
    booked = await client.post(
        "/api/v1/appointments",
        json={"patient_id": patient.json()["id"], "start": "2030-03-09T09:00:00-03:00"},
        headers=owner.headers,
    )
    appointment = booked.json()["id"]
    await client.patch(
        f"/api/v1/appointments/{appointment}",
        json={"start": "2030-03-09T10:00:00-03:00"},
        headers=owner.headers,
    )
    await client.post(
        f"/api/v1/appointments/{appointment}/status",
        json={"status": "confirmed"},
        headers=owner.headers,
    )
    await client.delete(f"/api/v1/appointments/{appointment}", headers=owner.headers)
    await deliver_until(fast_app, lambda: len(receiver.requests) == 5)

    events = [verify(hook["secret"], headers, body) for headers, body in receiver.requests]
    assert sorted(str(event["type"]) for event in events) == sorted(
        ["patient.created", "appointment.created", "appointment.updated",
         "appointment.status_changed", "appointment.cancelled"]
    )  # fmt: skip
    for (headers, _), event in zip(receiver.requests, events, strict=True):
        assert set(event) == {"id", "type", "created_at", "tenant_id", "data"}
        assert headers["X-ClinicFlow-Event-ID"] == event["id"]
        assert event["tenant_id"] == str(owner.tenant_id)
    created = next(event for event in events if event["type"] == "patient.created")
    assert created["data"]["email"] == "ana@example.com"  # type: ignore[index]
    log = await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
    assert [(item["status"], item["attempts"]) for item in log.json()["items"]] == [("sent", 1)] * 5


async def test_a_receiver_failing_twice_gets_the_event_once_more_after_backoff(
    client: httpx.AsyncClient, fast_app: FastAPI, receiver: Receiver
) -> None:
    owner = await make_member(fast_app, role="owner")
    hook = await subscribe(client, owner, receiver.url, ["patient.created"])
    receiver.fail_next = 2
    await client.post("/api/v1/patients", json={"full_name": "Bo"}, headers=owner.headers)
    await deliver_until(fast_app, lambda: receiver.requests)
    await asyncio.sleep(0.1)
    await deliver_outbox(fast_app)
    assert receiver.failed == 2
    assert len(receiver.requests) == 1  # delivered once, after two refusals
    [item] = (
        await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
    ).json()["items"]
    assert (item["status"], item["attempts"]) == ("sent", 3)
    assert "HTTP 500" in item["last_error"]


async def test_a_receiver_that_always_fails_ends_dead_and_visible(
    client: httpx.AsyncClient, fast_app: FastAPI, receiver: Receiver
) -> None:
    owner = await make_member(fast_app, role="owner")
    hook = await subscribe(client, owner, receiver.url, ["patient.created"])
    receiver.fail_next = 1000
    await client.post("/api/v1/patients", json={"full_name": "Cy"}, headers=owner.headers)

    async def dead() -> list[dict[str, object]]:
        listed = await client.get(
            "/api/v1/notifications", params={"status": "dead"}, headers=owner.headers
        )
        items: list[dict[str, object]] = listed.json()["items"]
        return items

    for _ in range(100):
        await deliver_outbox(fast_app)
        if await dead():
            break
        await asyncio.sleep(0.01)
    [item] = await dead()
    assert (item["webhook_id"], item["attempts"], receiver.failed) == (hook["id"], 3, 3)
    assert "HTTP 500" in str(item["last_error"])
    assert receiver.requests == []


async def test_the_secret_is_shown_once_and_stored_encrypted(
    client: httpx.AsyncClient, fast_app: FastAPI, admin_engine: AsyncEngine
) -> None:
    owner = await make_member(fast_app, role="owner")
    hook = await subscribe(client, owner, "http://127.0.0.1:9/hook")
    listed = await client.get(WEBHOOKS, headers=owner.headers)
    assert [item["id"] for item in listed.json()["items"]] == [hook["id"]]
    assert "secret" not in listed.json()["items"][0]
    async with admin_engine.connect() as connection:
        stored = (await connection.execute(select(WebhookSubscription.secret))).scalar_one()
    assert hook["secret"].encode() not in stored
    chosen = await client.post(
        WEBHOOKS,
        json={"url": "http://127.0.0.1:9/h", "events": ["patient.created"],
              "secret": "my-own-secret-of-sixteen+"},
        headers=owner.headers,
    )  # fmt: skip
    assert chosen.json()["secret"] == "my-own-secret-of-sixteen+"


async def test_ping_and_delete(
    client: httpx.AsyncClient, fast_app: FastAPI, receiver: Receiver
) -> None:
    owner = await make_member(fast_app, role="owner")
    hook = await subscribe(client, owner, receiver.url, ["patient.created"])
    ping = await client.post(f"{WEBHOOKS}/{hook['id']}/ping", headers=owner.headers)
    assert ping.status_code == 202
    await deliver_until(fast_app, lambda: receiver.requests)
    assert verify(hook["secret"], *receiver.requests[0])["type"] == "webhook.ping"

    receiver.fail_next = 1000
    await client.post("/api/v1/patients", json={"full_name": "Di"}, headers=owner.headers)
    deleted = await client.delete(f"{WEBHOOKS}/{hook['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert await deliver_outbox(fast_app) == 0  # the queued delivery was dropped with it
    assert receiver.failed == 0
    assert (await client.get(WEBHOOKS, headers=owner.headers)).json()["items"] == []
    gone = await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
    assert gone.status_code == 404


async def test_webhooks_are_listed_in_pages_and_capped_per_practice(
    client: httpx.AsyncClient, fast_app: FastAPI, receiver: Receiver
) -> None:
    """SPEC §4: lists take `limit` and `cursor` and carry `next_cursor`. Every event goes to
    each listening webhook, so a practice keeps at most MAX_WEBHOOKS (409 past it)."""
    owner = await make_member(fast_app, role="owner")
    made = [
        (await subscribe(client, owner, f"{receiver.url}?n={n}", ["patient.created"]))["id"]
        for n in range(MAX_WEBHOOKS)
    ]
    one_more = await client.post(
        WEBHOOKS, json={"url": receiver.url, "events": ["patient.created"]}, headers=owner.headers
    )
    assert one_more.status_code == 409
    assert str(MAX_WEBHOOKS) in one_more.json()["detail"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(WEBHOOKS, params=params, headers=owner.headers)).json()
        assert len(page["items"]) <= 10
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made  # oldest first, each once
    other = await make_member(fast_app, role="owner")
    assert (await client.get(WEBHOOKS, headers=other.headers)).json()["items"] == []


async def test_a_secret_no_key_opens_does_not_fail_the_booking_and_its_delivery_is_dead(
    client: httpx.AsyncClient, fast_app: FastAPI, receiver: Receiver
) -> None:
    """A secret sealed with a key this server lacks (dropped before `records rotate-key`
    re-sealed it): the change that emits the event succeeds, the other subscriptions get it
    signed, this one's delivery is dead with the reason, and a ping answers 503 naming the
    key, never 500."""
    owner = await make_member(fast_app, role="owner")
    settings = fast_app.state.settings
    ours = fast_app.state.outbox
    ring = f"{generate_key_entry('gone')},{settings.encryption_keys.get_secret_value()}"
    fast_app.state.outbox = Outbox(KeyRing.from_setting(ring), settings)
    try:
        lost = await subscribe(client, owner, receiver.url, ["patient.created"])
    finally:
        fast_app.state.outbox = ours
    kept = await subscribe(client, owner, receiver.url, ["patient.created"])

    created = await client.post(
        "/api/v1/patients", json={"full_name": "Eve"}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    await deliver_until(fast_app, lambda: receiver.requests)
    assert verify(kept["secret"], *receiver.requests[0])["type"] == "patient.created"
    log = await client.get(f"{WEBHOOKS}/{lost['id']}/deliveries", headers=owner.headers)
    [dead] = log.json()["items"]
    assert (dead["status"], dead["attempts"], dead["event_type"]) == ("dead", 0, "patient.created")
    assert "'gone'" in dead["last_error"]

    ping = await client.post(f"{WEBHOOKS}/{lost['id']}/ping", headers=owner.headers)
    assert ping.status_code == 503
    assert ping.json()["missing_key_id"] == "gone"
    assert await deliver_outbox(fast_app) == 0
    assert len(receiver.requests) == 1


async def test_bad_subscriptions_are_refused_with_a_clear_problem(
    client: httpx.AsyncClient, fast_app: FastAPI
) -> None:
    owner = await make_member(fast_app, role="owner")
    for body in (
        {"url": "ftp://example.com/x", "events": ["patient.created"]},
        {"url": "https://example.com/x", "events": ["patient.deleted"]},
        {"url": "https://example.com/x", "events": []},
        {"url": "https://example.com/x", "events": ["patient.created"], "secret": "short"},
        {"url": "https://example.com/x", "events": ["custom."]},
        {"url": "https://example.com/x", "events": ["custom.Follow_Up"]},
        {"url": "https://example.com/x", "events": ["webhook.ping"]},
    ):
        response = await client.post(WEBHOOKS, json=body, headers=owner.headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(WEBHOOKS, headers=owner.headers)).json()["items"] == []


async def test_an_api_key_cannot_manage_webhooks(
    client: httpx.AsyncClient, fast_app: FastAPI
) -> None:
    owner = await make_member(fast_app, role="owner")
    every_scope = [
        "patients:read", "patients:write", "appointments:read", "appointments:write",
        "availability:read", "metrics:read",
    ]  # fmt: skip
    key = {"X-API-Key": await make_api_key(fast_app, owner.tenant_id, every_scope)}  # type: ignore[arg-type]
    body = {"url": "https://example.com/hook", "events": ["patient.created"]}
    assert (await client.post(WEBHOOKS, json=body, headers=key)).status_code == 403
    assert (await client.get(WEBHOOKS, headers=key)).status_code == 403


async def test_private_addresses_are_refused_in_production_at_save_and_at_delivery(
    fast_app: FastAPI, settings: Settings, receiver: Receiver
) -> None:
    owner = await make_member(fast_app, role="owner")
    async with production_client(settings) as (app, client):
        for url in (receiver.url, "http://localhost/hook", "http://10.0.0.8/hook",
                    "http://169.254.169.254/latest/meta-data"):  # fmt: skip
            refused = await client.post(
                WEBHOOKS, json={"url": url, "events": ["patient.created"]},
                headers=owner.headers,
            )  # fmt: skip
            assert refused.status_code == 422, url
            assert "private or internal" in refused.text
        unresolvable = f"https://{'a' * 64}.example.com/hook"  # a label past DNS's 63
        refused = await client.post(
            WEBHOOKS, json={"url": unresolvable, "events": ["patient.created"]},
            headers=owner.headers,
        )  # fmt: skip
        assert refused.status_code == 422, refused.text
        assert "does not resolve" in refused.text

    # Saved while allowed (development), then delivered by a production worker: refused.
    transport = httpx.ASGITransport(app=documented_statuses.recording(fast_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await subscribe(client, owner, receiver.url, ["patient.created"])
        await client.post("/api/v1/patients", json={"full_name": "Ed"}, headers=owner.headers)
        worker = Worker(
            fast_app.state.database.sessionmaker, fast_app.state.key_ring,
            fast_app.state.mailer, app.state.settings,
        )  # fmt: skip
        await worker.run_once()
        [item] = (await client.get("/api/v1/notifications", headers=owner.headers)).json()["items"]
    assert receiver.requests == []
    assert "UnsafeWebhookURL" in item["last_error"]


async def test_a_host_that_rebinds_to_a_private_address_after_the_check_is_not_called(
    fast_app: FastAPI, settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address when the webhook is saved, then the
    server's own (where the receiver listens). The delivery connects only to the address it
    has just checked, so nothing reaches the receiver."""
    port = urlsplit(receiver.url).port
    rebinding = RebindingResolver("hooks.rebinding.test", "127.0.0.1")
    rebinding.install(monkeypatch)
    owner = await make_member(fast_app, role="owner")
    async with production_client(settings) as (app, client):
        url = f"http://hooks.rebinding.test:{port}/hook"
        await subscribe(client, owner, url, ["patient.created"])
        await client.post("/api/v1/patients", json={"full_name": "Ed"}, headers=owner.headers)
        state = app.state
        await Worker(
            state.database.sessionmaker, state.key_ring, state.mailer, state.settings
        ).run_once()
        [item] = (await client.get("/api/v1/notifications", headers=owner.headers)).json()["items"]
    assert rebinding.answers == [PUBLIC_ADDRESS, "127.0.0.1"]  # saved, then connected
    assert receiver.requests == []
    assert item["status"] != "sent"
    assert "private or internal" in item["last_error"]


async def test_an_event_is_queued_only_for_the_live_subscriptions_listening_to_it(
    client: httpx.AsyncClient, fast_app: FastAPI, admin_engine: AsyncEngine
) -> None:
    owner = await make_member(fast_app, role="owner")
    patients_only = await subscribe(client, owner, "https://example.com/p", ["patient.created"])
    bookings_only = await subscribe(client, owner, "https://example.com/b", ["appointment.created"])
    removed = await subscribe(client, owner, "https://example.com/r")
    await client.delete(f"{WEBHOOKS}/{removed['id']}", headers=owner.headers)
    patient = await client.post(
        "/api/v1/patients", json={"full_name": "Bea"}, headers=owner.headers
    )
    booked = await client.post(
        "/api/v1/appointments",
        json={"patient_id": patient.json()["id"], "start": "2030-03-11T09:00:00-03:00"},
        headers=owner.headers,
    )
    assert booked.status_code == 201, booked.text

    async def queued(hook: dict[str, str]) -> list[str]:
        response = await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
        return [item["event_type"] for item in response.json()["items"]]

    assert await queued(patients_only) == ["patient.created"]
    assert await queued(bookings_only) == ["appointment.created"]
    async with admin_engine.connect() as connection:  # sees every practice's rows
        counts = [
            await connection.scalar(
                select(func.count()).where(Notification.webhook_id == hook["id"])
            )
            for hook in (patients_only, removed)
        ]
    assert counts == [1, 0]


async def test_manual_events_are_custom_and_never_pass_for_the_systems_own(
    client: httpx.AsyncClient, fast_app: FastAPI, receiver: Receiver
) -> None:
    """An assistant's manual event cannot be an appointment.cancelled a receiver would act on;
    a custom one reaches the webhooks subscribed to its name or to custom.*, signed."""
    owner = await make_member(fast_app, role="owner")
    assistant = await make_member(fast_app, role="assistant", tenant_id=owner.tenant_id)
    every_custom = await subscribe(client, owner, receiver.url, [*ALL_EVENTS, "custom.*"])
    follow_ups = await subscribe(client, owner, f"{receiver.url}?f", ["custom.follow_up"])
    system_only = await subscribe(client, owner, f"{receiver.url}?s", ALL_EVENTS)

    async def send(event_type: str) -> httpx.Response:
        return await client.post(
            "/api/v1/notifications",
            json={"channel": "webhook", "event_type": event_type, "data": {"id": "x"}},
            headers=assistant.headers,
        )

    for forged in [*ALL_EVENTS, "webhook.ping"]:
        refused = await send(forged)
        assert refused.status_code == 422, forged
        [error] = refused.json()["errors"]
        assert error["location"][-1] == "event_type"
        assert f"{forged} is one of ClinicFlow's own events" in error["message"]
        assert "custom.<name>" in error["message"]
    for malformed in ("patient.exploded", "custom.", "Custom.follow_up", "custom.*", "custom.a b"):
        refused = await send(malformed)
        assert refused.status_code == 422, malformed
        assert [e["location"][-1] for e in refused.json()["errors"]] == ["event_type"]
    assert await deliver_outbox(fast_app) == 0  # nothing was queued

    follow_up, birthday = await send("custom.follow_up"), await send("custom.birthday")
    assert (follow_up.status_code, birthday.status_code) == (202, 202)
    assert [len(answer.json()["items"]) for answer in (follow_up, birthday)] == [2, 1]
    await deliver_until(fast_app, lambda: len(receiver.requests) == 3)

    received = {
        headers["X-ClinicFlow-Event-ID"]: (headers, body) for headers, body in receiver.requests
    }

    async def delivered(hook: dict[str, str]) -> list[str]:
        response = await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
        types = []
        for item in response.json()["items"]:
            assert item["status"] == "sent"
            event = verify(hook["secret"], *received[item["id"]])
            assert event["type"] == item["event_type"]
            assert event["data"] == {"id": "x"}
            types.append(str(event["type"]))
        return sorted(types)

    assert await delivered(every_custom) == ["custom.birthday", "custom.follow_up"]
    assert await delivered(follow_ups) == ["custom.follow_up"]
    assert await delivered(system_only) == []
