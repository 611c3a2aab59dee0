"""One patient's data in one document (LGPD Art. 18, GDPR Art. 15/20): everything held about
them, medical records only when the owner asks for them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.repository import AppointmentFilters, AppointmentRepository
from clinicflow.appointments.schemas import AppointmentRead, StatusChangeRead
from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.crypto import KeyRing
from clinicflow.core.errors import NotFound
from clinicflow.core.models import utcnow
from clinicflow.finance.repository import EntryRepository
from clinicflow.finance.schemas import EntryRead
from clinicflow.patients.repository import PatientRepository
from clinicflow.patients.schemas import PatientRead
from clinicflow.records.schemas import PatientRecordsExport
from clinicflow.records.service import RecordService


class AppointmentWithHistory(AppointmentRead):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    status_history: list[StatusChangeRead] = Field(description="Every status change, oldest first.")


class PatientDataExport(BaseModel):
    """Each section is filled by one repository call; a new kind of data about a patient (e.g.
    notifications) is one more field and one more call in `PatientExportService.build`."""

    exported_at: datetime = Field(description="When the export was made.")
    patient: PatientRead = Field(description="The patient's data.")
    appointments: list[AppointmentWithHistory] = Field(
        description="Every appointment of the patient, with its status history."
    )
    financial_entries: list[EntryRead] = Field(
        description="Every financial entry about the patient."
    )
    medical_records: PatientRecordsExport | None = Field(
        default=None,
        description="The medical records with all versions; only with include_records=true.",
    )


class PatientExportService:
    def __init__(self, session: AsyncSession, keys: KeyRing, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.keys = keys
        self.tenant_id = tenant_id

    async def build(
        self, patient_id: uuid.UUID, actor: Actor, *, include_records: bool
    ) -> PatientDataExport:
        patient = await PatientRepository(self.session).get(patient_id)
        if patient is None:
            raise NotFound("Patient not found.")
        appointments = AppointmentRepository(self.session)
        booked = [a async for a in appointments.stream(AppointmentFilters(patient_id=patient_id))]
        document = PatientDataExport(
            exported_at=utcnow(),
            patient=PatientRead.model_validate(patient),
            appointments=[
                AppointmentWithHistory(
                    **AppointmentRead.model_validate(row).model_dump(),
                    status_history=[
                        StatusChangeRead.model_validate(change)
                        for change in await appointments.history(row.id)
                    ],
                )
                for row in booked
            ],
            financial_entries=[
                EntryRead.model_validate(entry)
                for entry in await EntryRepository(self.session).for_patient(patient_id)
            ],
        )
        if include_records:  # audited by the record service as a record export
            records = RecordService(self.session, self.keys, self.tenant_id)
            document.medical_records = await records.export_patient(patient_id, actor)
        await audit.record(
            self.session, "patient.exported", actor=actor, subject_type="patient",
            subject_id=patient_id, details={"medical_records": include_records},
        )  # fmt: skip
        return document
