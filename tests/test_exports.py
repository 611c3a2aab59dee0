"""Exports: CSV and XLSX files equal to the API lists, custom fields as columns, formula
injection neutralised, owner and assistant only, audited, one practice's rows only."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from openpyxl import load_workbook

from tests.factories import Member, make_member
from tests.test_patients import FIELDS, set_custom_fields
from tests.test_records import audit_actions

EXPORTS = "/api/v1/exports"
INJECTION = '=HYPERLINK("http://x")'


async def post(client: httpx.AsyncClient, who: Member, path: str, body: dict[str, Any]) -> dict:
    response = await client.post(f"/api/v1/{path}", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def api_list(client: httpx.AsyncClient, who: Member, path: str, **params: str) -> list:
    response = await client.get(f"/api/v1/{path}", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def xlsx_rows(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    assert sheet is not None
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    # A read-only sheet leaves out empty cells at the end of a row.
    return [dict(zip(header, row + [None] * (len(header) - len(row)), strict=True)) for row in rows]


def as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def test_patients_csv_round_trips_with_custom_fields_and_neutralised_formulas(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    await set_custom_fields(db, owner.tenant_id, FIELDS)
    await post(client, owner, "patients", {
        "full_name": INJECTION, "phone": "+55 11 99999-0000", "notes": "@ref, with \"quotes\"\n2",
        "birth_date": "1990-04-02", "custom_fields": {"insurance": "unimed",
                                                       "sessions_per_month": 4},
    })  # fmt: skip
    await post(client, owner, "patients", {"full_name": "Ana Souza", "custom_fields": {
        "insurance": "none", "first_visit": "2026-01-05"}})  # fmt: skip
    other = await make_member(db, role="owner")
    await post(client, other, "patients", {"full_name": "Other Practice Patient"})

    rows = csv_rows(await client.get(f"{EXPORTS}/patients", headers=owner.headers))

    listed = await api_list(client, owner, "patients")
    assert len(rows) == len(listed) == 2
    for row, item in zip(rows, listed, strict=True):
        custom = item.pop("custom_fields")
        for key in ("insurance", "sessions_per_month", "first_visit"):
            assert row.pop(f"custom_fields.{key}") == as_text(custom.get(key))
        assert row.keys() == item.keys()
        for column, value in item.items():
            expected = as_text(value)
            if expected[:1] in ("=", "+", "-", "@"):
                expected = "'" + expected
            assert row[column] == expected, column
    injected = next(row for row in rows if row["full_name"].endswith(INJECTION))
    assert injected["full_name"] == "'" + INJECTION
    assert injected["phone"] == "'+55 11 99999-0000"
    assert injected["birth_date"] == "1990-04-02"
    actions = await audit_actions(db, owner.tenant_id)
    assert actions.count("export.created") == 1


async def test_appointments_xlsx_rows_equal_the_api_list_and_filters_apply(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    patient = await post(client, owner, "patients", {"full_name": "=1+1"})
    booked = []
    for day in (9, 10, 11):
        body = {"patient_id": patient["id"], "start": f"2026-03-{day:02d}T13:00:00Z",
                "duration_minutes": 50, "notes": INJECTION}  # fmt: skip
        booked.append(await post(client, owner, "appointments", body))
    cancel = await client.post(
        f"/api/v1/appointments/{booked[1]['id']}/status",
        json={"status": "cancelled"},
        headers=owner.headers,
    )
    assert cancel.status_code == 200, cancel.text

    response = await client.get(
        f"{EXPORTS}/appointments", params={"format": "xlsx"}, headers=assistant.headers
    )
    rows = xlsx_rows(response)
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    listed = await api_list(client, owner, "appointments")
    assert len(rows) == len(listed) == 3
    for row, item in zip(rows, listed, strict=True):
        assert {column: as_text(value) for column, value in row.items()} == {
            column: as_text(value) for column, value in item.items()
        }
        assert row["notes"] == INJECTION  # kept as text, never turned into a formula
    scheduled = xlsx_rows(
        await client.get(
            f"{EXPORTS}/appointments",
            params={"format": "xlsx", "status": "cancelled"},
            headers=owner.headers,
        )
    )
    assert [row["id"] for row in scheduled] == [booked[1]["id"]]
    workbook = load_workbook(
        io.BytesIO(
            (
                await client.get(
                    f"{EXPORTS}/appointments", params={"format": "xlsx"}, headers=owner.headers
                )
            ).content
        )
    )
    sheet = workbook.active
    assert sheet is not None
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    people = xlsx_rows(
        await client.get(f"{EXPORTS}/patients", params={"format": "xlsx"}, headers=owner.headers)
    )
    names = {row["id"]: row["full_name"] for row in people}
    assert names == {patient["id"]: "=1+1"}  # a formula-looking name stays text


async def test_financial_entries_are_exact_strings_in_csv_and_numbers_in_xlsx(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    for amount, due in (("150.00", "2026-03-05"), ("0.10", "2026-03-06"), ("99.99", "2026-04-01")):
        await post(client, owner, "financial-entries", {
            "kind": "income", "amount": amount, "currency": "BRL", "due_date": due,
        })  # fmt: skip

    march = {"from": "2026-03-01", "to": "2026-03-31"}
    rows = csv_rows(
        await client.get(f"{EXPORTS}/financial-entries", params=march, headers=owner.headers)
    )
    assert [(row["amount"], row["due_date"]) for row in rows] == [
        ("150.00", "2026-03-05"),
        ("0.10", "2026-03-06"),
    ]
    cells = xlsx_rows(
        await client.get(
            f"{EXPORTS}/financial-entries", params={"format": "xlsx"}, headers=owner.headers
        )
    )
    assert all(isinstance(row["amount"], int | float) for row in cells)
    assert [Decimal(str(row["amount"])).quantize(Decimal("0.01")) for row in cells] == [
        Decimal("150.00"), Decimal("0.10"), Decimal("99.99"),
    ]  # fmt: skip
    listed = await api_list(client, owner, "financial-entries")
    assert [row["id"] for row in cells] == [item["id"] for item in listed]


async def test_viewer_and_api_keys_cannot_export_and_bad_input_is_a_4xx(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    viewer = await make_member(db, role="viewer", tenant_id=owner.tenant_id)
    for kind in ("patients", "appointments", "financial-entries"):
        denied = await client.get(f"{EXPORTS}/{kind}", headers=viewer.headers)
        assert denied.status_code == 403, kind
    bad_format = await client.get(
        f"{EXPORTS}/patients", params={"format": "pdf"}, headers=owner.headers
    )
    assert bad_format.status_code == 422
    naive = await client.get(
        f"{EXPORTS}/appointments", params={"from": "2026-03-01T00:00:00"}, headers=owner.headers
    )
    assert naive.status_code == 422  # a time without an offset, as on every list
    assert naive.headers["content-type"].startswith("application/problem+json")
    assert "export.created" not in await audit_actions(db, owner.tenant_id)


async def test_patient_export_holds_everything_and_records_only_for_the_owner(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    patient = await post(client, owner, "patients", {"full_name": "Joana Lima"})
    someone_else = await post(client, owner, "patients", {"full_name": "Not Joana"})
    body = {"patient_id": patient["id"], "start": "2026-03-09T13:00:00Z"}
    booked = await post(client, owner, "appointments", body)
    body = {"patient_id": someone_else["id"], "start": "2026-03-10T13:00:00Z"}
    await post(client, owner, "appointments", body)
    confirmed = await client.post(
        f"/api/v1/appointments/{booked['id']}/status",
        json={"status": "confirmed"},
        headers=owner.headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    entry = {"kind": "income", "amount": "150.00", "currency": "BRL", "due_date": "2026-03-09",
             "patient_id": patient["id"]}  # fmt: skip
    await post(client, owner, "financial-entries", entry)
    await post(client, owner, f"patients/{patient['id']}/records", {"content": "anxiety, CBT"})
    url = f"/api/v1/patients/{patient['id']}/export"

    full = await client.get(url, params={"include_records": "true"}, headers=owner.headers)
    assert full.status_code == 200, full.text
    document = full.json()
    assert document["patient"] == patient
    assert [a["id"] for a in document["appointments"]] == [booked["id"]]
    assert [(h["from_status"], h["to_status"]) for h in document["appointments"][0][
        "status_history"]] == [(None, "scheduled"), ("scheduled", "confirmed")]  # fmt: skip
    assert [e["amount"] for e in document["financial_entries"]] == ["150.00"]
    records = document["medical_records"]["records"]
    assert [r["versions"][0]["content"] for r in records] == ["anxiety, CBT"]

    by_assistant = await client.get(url, headers=assistant.headers)
    assert by_assistant.status_code == 200
    assert by_assistant.json()["medical_records"] is None
    assert "anxiety" not in by_assistant.text
    asked = await client.get(url, params={"include_records": "true"}, headers=assistant.headers)
    assert asked.status_code == 403

    actions = await audit_actions(db, owner.tenant_id)
    assert actions.count("patient.exported") == 2
    assert actions.count("record.exported") == 1

    other = await make_member(db, role="owner")
    assert (await client.get(url, headers=other.headers)).status_code == 404
    viewer = await make_member(db, role="viewer", tenant_id=owner.tenant_id)
    assert (await client.get(url, headers=viewer.headers)).status_code == 403
