"""Queries of medical records (tenant-scoped)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.records.models import MedicalRecord, RecordVersion


class RecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, entity: MedicalRecord | RecordVersion) -> None:
        self.session.add(entity)

    async def get(self, record_id: uuid.UUID) -> MedicalRecord | None:
        statement = select(MedicalRecord).where(MedicalRecord.id == record_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def for_patient(self, patient_id: uuid.UUID) -> list[MedicalRecord]:
        statement = (
            select(MedicalRecord)
            .where(MedicalRecord.patient_id == patient_id)
            .order_by(MedicalRecord.created_at, MedicalRecord.id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def versions(self, record_id: uuid.UUID) -> list[RecordVersion]:
        statement = (
            select(RecordVersion)
            .where(RecordVersion.record_id == record_id)
            .order_by(RecordVersion.version)
        )
        return list((await self.session.execute(statement)).scalars())

    async def version(self, record_id: uuid.UUID, number: int) -> RecordVersion | None:
        statement = select(RecordVersion).where(
            RecordVersion.record_id == record_id, RecordVersion.version == number
        )
        return (await self.session.execute(statement)).scalar_one_or_none()
