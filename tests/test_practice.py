"""practice:read: what a receptionist or bot needs about the practice, and nothing else; the
only professional is the default wherever professional_id may be left out."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_api_key, make_member

PROFILE_FIELDS = {
    "id", "name", "timezone", "working_hours", "default_appointment_minutes",
    "professionals", "default_professional_id", "custom_patient_fields",
}  # fmt: skip
FIELD = {"key": "insurance", "label": "Insurance", "type": "text"}


async def test_a_practice_read_key_gets_the_profile_and_nothing_else(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner", full_name="Dr. Ana")
    await make_member(db, role="assistant", tenant_id=owner.tenant_id, full_name="Bia")
    changed = await client.patch(
        "/api/v1/tenant",
        json={"session_fee": "150.00", "currency": "BRL", "custom_patient_fields": [FIELD]},
        headers=owner.headers,
    )
    assert changed.status_code == 200
    key = {"X-API-Key": await make_api_key(db, owner.tenant_id, ["practice:read"])}
    profile = await client.get("/api/v1/tenant/practice", headers=key)
    staff = await client.get("/api/v1/tenant/professionals", headers=key)
    settings = await client.get("/api/v1/tenant", headers=key)
    assert profile.status_code == 200
    assert set(profile.json()) == PROFILE_FIELDS
    # The fee and currency stay out of the profile (a bare "150" could occur inside an id).
    assert "150.00" not in profile.text
    assert "BRL" not in profile.text
    assert profile.json()["custom_patient_fields"][0]["key"] == "insurance"
    assert profile.json()["working_hours"]["mon"] == [{"start": "09:00", "end": "18:00"}]
    assert staff.json()["items"] == [{"id": str(owner.user_id), "full_name": "Dr. Ana"}]
    assert staff.json()["default_professional_id"] == str(owner.user_id)
    assert settings.status_code == 403


async def test_assistants_read_the_practice_settings_but_never_change_them(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    read = await client.get("/api/v1/tenant", headers=assistant.headers)
    change = await client.patch(
        "/api/v1/tenant", json={"name": "Renamed"}, headers=assistant.headers
    )
    assert read.status_code == 200
    assert change.status_code == 403
    assert (await client.get("/api/v1/tenant", headers=owner.headers)).json()["name"] != "Renamed"


async def test_the_only_professional_is_the_default_for_keys_and_assistants(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    scopes = ["patients:write", "appointments:write", "availability:read"]
    key = {"X-API-Key": await make_api_key(db, owner.tenant_id, scopes)}
    patient = await client.post("/api/v1/patients", json={"full_name": "Rui"}, headers=key)
    window = {"from": "2026-12-07T00:00:00Z", "to": "2026-12-08T00:00:00Z"}
    free = await client.get("/api/v1/availability", params=window, headers=key)
    booked = [
        await client.post(
            "/api/v1/appointments",
            json={"patient_id": patient.json()["id"], "start": start},
            headers=headers,
        )
        for start, headers in (
            ("2026-12-07T09:00:00Z", key),
            ("2026-12-07T11:00:00Z", assistant.headers),
        )
    ]
    assert free.json()["professional_id"] == str(owner.user_id)
    assert [r.json()["professional_id"] for r in booked] == [str(owner.user_id)] * 2

    await make_member(db, role="owner", tenant_id=owner.tenant_id)
    ambiguous = await client.post(
        "/api/v1/appointments",
        json={"patient_id": patient.json()["id"], "start": "2026-12-07T14:00:00Z"},
        headers=key,
    )
    assert ambiguous.status_code == 409  # the practice has no single default
    assert "professional" in ambiguous.json()["detail"]


@pytest.mark.parametrize("day", ["2026-03-09", "2026-12-07"])  # Mondays, past and (now) future
async def test_a_rest_clash_also_offers_the_two_nearest_free_slots(
    client: httpx.AsyncClient, db: FastAPI, day: str
) -> None:
    owner = await make_member(db, role="owner")
    patient = await client.post(
        "/api/v1/patients", json={"full_name": "Lia"}, headers=owner.headers
    )
    body = {"patient_id": patient.json()["id"], "start": f"{day}T10:00:00Z"}
    first = await client.post(
        "/api/v1/appointments", json={**body, "duration_minutes": 60}, headers=owner.headers
    )
    clash = await client.post(
        "/api/v1/appointments",
        json={**body, "start": f"{day}T10:30:00Z", "duration_minutes": 60},
        headers=owner.headers,
    )
    assert clash.status_code == 409
    assert clash.json()["conflicting_appointment_id"] == first.json()["id"]
    assert [slot["start"] for slot in clash.json()["nearby_free_slots"]] == [
        f"{day}T09:00:00+00:00", f"{day}T11:00:00+00:00"
    ]  # fmt: skip
