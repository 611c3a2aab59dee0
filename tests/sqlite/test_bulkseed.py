"""Bulk seeding on SQLite: multi-row inserts, and a seeded owner sees only their practice."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from clinicflow.appointments.models import Appointment
from clinicflow.bulkseed import SEED_PASSWORD, BulkPlan, seed_bulk
from clinicflow.core.settings import Settings
from clinicflow.patients.models import Patient


async def test_bulk_seed_on_sqlite(
    client: httpx.AsyncClient, db: FastAPI, settings: Settings
) -> None:
    result = await seed_bulk(settings, BulkPlan(2, 15, 2, professionals=3))
    async with db.state.database.engine.connect() as connection:
        patients = await connection.scalar(select(func.count()).select_from(Patient))
        appointments = await connection.scalar(select(func.count()).select_from(Appointment))
    assert (patients, appointments) == (30, 60)
    login = await client.post(
        "/api/v1/auth/login",
        json={"username": result.practices[1].owner_email, "password": SEED_PASSWORD},
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    listed = (await client.get("/api/v1/patients?limit=100", headers=headers)).json()["items"]
    assert len(listed) == 15
    assert len({patient["full_name"] for patient in listed}) > 5  # varied names
    searched = await client.get(
        "/api/v1/patients", params={"q": listed[-1]["full_name"]}, headers=headers
    )
    assert listed[-1]["id"] in {patient["id"] for patient in searched.json()["items"]}
