"""Our rows as FHIR R4B resources (fhir.resources models, validated on construction)."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient as FhirPatient

from clinicflow import __version__
from clinicflow.appointments.models import AppointmentView, Status
from clinicflow.patients.models import PatientView

FHIR_MEDIA_TYPE = "application/fhir+json"
DOCUMENT_SYSTEM = "urn:clinicflow:patient-document"

# Our appointment statuses in the FHIR Appointment.status value set (docs/FHIR.md).
STATUS_TO_FHIR: dict[Status, str] = {
    Status.SCHEDULED: "booked",
    Status.CONFIRMED: "booked",
    Status.ARRIVED: "arrived",
    Status.COMPLETED: "fulfilled",
    Status.CANCELLED: "cancelled",
    Status.NO_SHOW: "noshow",
}


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def patient_resource(patient: PatientView) -> FhirPatient:
    telecom = [
        {"system": system, "value": value}
        for system, value in (("phone", patient.phone), ("email", patient.email))
        if value
    ]
    identifier = (
        [{"system": DOCUMENT_SYSTEM, "value": patient.document}] if patient.document else []
    )
    return FhirPatient(
        id=str(patient.id),
        meta={"lastUpdated": _instant(patient.updated_at)},
        active=patient.active,
        name=[{"text": patient.full_name}],
        birthDate=patient.birth_date,
        telecom=telecom or None,
        identifier=identifier or None,
    )


def appointment_resource(appointment: AppointmentView) -> FhirAppointment:
    """Front-desk notes stay out: viewers may read the agenda through this resource too."""
    participant_status = "declined" if appointment.status is Status.CANCELLED else "accepted"
    return FhirAppointment(
        id=str(appointment.id),
        status=STATUS_TO_FHIR[appointment.status],
        start=_instant(appointment.start_at),
        end=_instant(appointment.end_at),
        minutesDuration=int((appointment.end_at - appointment.start_at).total_seconds() // 60),
        participant=[
            {"actor": {"reference": f"Patient/{appointment.patient_id}"},
             "status": participant_status},
            {"actor": {"reference": f"Practitioner/{appointment.professional_id}"},
             "status": participant_status},
        ],
    )  # fmt: skip


def searchset(base: str, resources: list[FhirPatient | FhirAppointment], self_url: str,
              next_url: str | None) -> Bundle:  # fmt: skip
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return Bundle(
        type="searchset",
        link=links,
        entry=[
            {"fullUrl": f"{base}/{r.get_resource_type()}/{r.id}", "resource": r,
             "search": {"mode": "match"}}
            for r in resources
        ],
    )  # fmt: skip


def capability_statement(now: datetime) -> CapabilityStatement:
    def search(name: str, kind: str) -> dict[str, str]:
        return {"name": name, "type": kind}

    return CapabilityStatement(
        status="active",
        date=_instant(now),
        kind="instance",
        software={"name": "ClinicFlow", "version": __version__},
        fhirVersion="4.3.0",
        format=["json"],
        rest=[{
            "mode": "server",
            "resource": [
                {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [search("name", "string"), search("birthdate", "date"),
                                 search("_count", "number")]},
                {"type": "Appointment",
                 "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [search("date", "date"), search("patient", "reference"),
                                 search("_count", "number")]},
            ],
        }],
    )  # fmt: skip


def operation_outcome(status: int, detail: str) -> OperationOutcome:
    code = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 422: "invalid",
            429: "throttled"}.get(status, "processing")  # fmt: skip
    severity = "fatal" if status >= 500 else "error"
    return OperationOutcome(issue=[{"severity": severity, "code": code, "diagnostics": detail}])
