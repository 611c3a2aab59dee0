"""Finance: exact decimal amounts, a summary equal to a hand-computed fixture, the session fee."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from clinicflow.tenants.models import Tenant
from tests.factories import Member, make_member

ENTRIES = "/api/v1/financial-entries"


async def add(client: httpx.AsyncClient, owner: Member, **body: object) -> httpx.Response:
    payload = {"kind": "income", "currency": "BRL", "due_date": "2026-03-05", **body}
    return await client.post(ENTRIES, json=payload, headers=owner.headers)


async def test_summary_equals_the_hand_computed_figures(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    rows = [
        {
            "amount": "150.00",
            "paid_at": "2026-03-05T14:00:00Z",
            "method": "pix",
            "category": "session",
        },
        {
            "amount": "0.10",
            "paid_at": "2026-03-06T14:00:00Z",
            "method": "card",
            "category": "session",
        },
        {"amount": 0.2, "paid_at": "2026-03-07T14:00:00Z", "method": "card", "category": "product"},
        {"amount": "200.00", "due_date": "2026-03-20"},
        {
            "kind": "expense",
            "amount": "50.00",
            "paid_at": "2026-03-10T09:00:00Z",
            "category": "rent",
        },
        {"amount": "99.99", "currency": "USD", "paid_at": "2026-03-11T09:00:00Z", "method": "card"},
        {"amount": "10.00", "paid_at": "2026-04-01T09:00:00Z", "due_date": "2026-04-01"},
        {"amount": "30.00", "due_date": "2026-04-02"},
    ]
    for row in rows:
        response = await add(client, owner, **row)
        assert response.status_code == 201, response.text
    summary = await client.get(
        f"{ENTRIES}/summary",
        params={"from": "2026-03-01", "to": "2026-03-31"},
        headers=owner.headers,
    )
    assert summary.status_code == 200
    assert summary.json() == {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "currencies": [
            {
                "currency": "BRL", "received": "150.30", "outstanding": "200.00",
                "overdue": "200.00", "expenses_paid": "50.00",
                "received_by_method": {"card": "0.30", "pix": "150.00"},
                "by_category": {"product": "0.20", "rent": "-50.00", "session": "150.10"},
            },
            {
                "currency": "USD", "received": "99.99", "outstanding": "0.00", "overdue": "0.00",
                "expenses_paid": "0.00", "received_by_method": {"card": "99.99"},
                "by_category": {"uncategorised": "99.99"},
            },
        ],
    }  # fmt: skip


async def test_amounts_are_exact_and_bad_entries_store_nothing(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    created = await add(client, owner, amount="150.10")
    assert created.json()["amount"] == "150.10"
    bad = [
        {"amount": "-5.00"}, {"amount": "0"}, {"amount": "1.001"}, {"amount": "NaN"},
        {"amount": "10.00", "currency": "brl"}, {"amount": "10.00", "kind": "gift"},
        {"amount": "10.00", "paid_at": "2026-03-05T10:00:00"},
    ]  # fmt: skip
    for body in bad:
        assert (await add(client, owner, **body)).status_code == 422, body
    for reference in ("patient_id", "appointment_id"):  # names what the practice lacks: 404
        response = await add(client, owner, amount="10.00", **{reference: str(uuid.uuid4())})
        assert response.status_code == 404, response.text
        assert response.json()["errors"][0]["field"] == reference
    listed = await client.get(ENTRIES, headers=owner.headers)
    assert [item["amount"] for item in listed.json()["items"]] == ["150.10"]
    backwards = await client.get(
        f"{ENTRIES}/summary",
        params={"from": "2026-03-31", "to": "2026-03-01"},
        headers=owner.headers,
    )
    assert backwards.status_code == 200  # an empty period: nothing in it
    assert backwards.json()["currencies"] == []


async def test_mark_paid_delete_and_isolation(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner, stranger = await make_member(db, role="owner"), await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    entry = (await add(client, assistant, amount="80.00")).json()
    paid = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"paid_at": "2026-03-05T12:00:00Z", "method": "cash"},
        headers=assistant.headers,
    )  # fmt: skip
    assert paid.json()["method"] == "cash"
    for method in ("GET", "PATCH", "DELETE"):
        foreign = await client.request(
            method, f"{ENTRIES}/{entry['id']}", json={}, headers=stranger.headers
        )
        assert foreign.status_code == 404
    assert (
        await client.delete(f"{ENTRIES}/{entry['id']}", headers=owner.headers)
    ).status_code == 204
    assert (await client.get(f"{ENTRIES}/{entry['id']}", headers=owner.headers)).status_code == 404
    viewer = await make_member(db, role="viewer", tenant_id=owner.tenant_id)
    assert (await client.get(ENTRIES, headers=viewer.headers)).status_code == 403


async def test_an_appointment_is_charged_at_the_session_fee(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = (
        await client.post("/api/v1/patients", json={"full_name": "Lia"}, headers=owner.headers)
    ).json()
    appointment = (
        await client.post(
            "/api/v1/appointments",
            json={
                "patient_id": patient["id"],
                "start": "2026-03-09T09:00:00-03:00",
                "duration_minutes": 50,
            },
            headers=owner.headers,
        )
    ).json()
    unset = await client.post(
        f"/api/v1/appointments/{appointment['id']}/charge", headers=owner.headers
    )
    assert unset.status_code == 409  # the practice must set its fee first
    async with db.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Tenant).where(Tenant.id == owner.tenant_id)
            .values(settings={"session_fee": "180.00", "currency": "BRL"})
        )  # fmt: skip
    charged = await client.post(
        f"/api/v1/appointments/{appointment['id']}/charge", headers=owner.headers
    )
    assert charged.status_code == 201
    body = charged.json()
    assert (body["amount"], body["currency"], body["kind"]) == ("180.00", "BRL", "income")
    assert (body["patient_id"], body["appointment_id"]) == (patient["id"], appointment["id"])
    assert body["due_date"] == "2026-03-09"


async def test_paid_at_is_answered_in_utc_by_create_update_and_read(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    created = await add(client, owner, amount="80.00", paid_at="2026-03-05T11:00:00-03:00")
    path = f"{ENTRIES}/{created.json()['id']}"
    updated = await client.patch(
        path, json={"paid_at": "2026-03-06T09:30:00+02:00"}, headers=owner.headers
    )
    read = await client.get(path, headers=owner.headers)
    assert created.json()["paid_at"] == "2026-03-05T14:00:00Z"
    assert updated.json()["paid_at"] == read.json()["paid_at"] == "2026-03-06T07:30:00Z"


async def test_a_charge_is_due_on_the_appointments_day_where_the_practice_is(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """22:00 in São Paulo is 01:00 the next day in UTC: the fee is due on the practice's day."""
    owner = await make_member(db, role="owner")
    settings = await client.patch(
        "/api/v1/tenant",
        json={"timezone": "America/Sao_Paulo", "session_fee": "180.00"},
        headers=owner.headers,
    )
    assert settings.status_code == 200, settings.text
    patient = (
        await client.post("/api/v1/patients", json={"full_name": "Lia"}, headers=owner.headers)
    ).json()
    late = await client.post(
        "/api/v1/appointments",
        json={"patient_id": patient["id"], "start": "2027-06-15T22:00:00-03:00",
              "duration_minutes": 50},
        headers=owner.headers,
    )  # fmt: skip
    assert late.status_code == 201, late.text
    assert late.json()["start"].startswith("2027-06-16T01:00:00")
    charged = await client.post(
        f"/api/v1/appointments/{late.json()['id']}/charge", headers=owner.headers
    )
    assert charged.status_code == 201, charged.text
    assert charged.json()["due_date"] == "2027-06-15"
    stored = await client.get(f"{ENTRIES}/{charged.json()['id']}", headers=owner.headers)
    assert stored.json()["due_date"] == "2027-06-15"
