"""Writing, amending and reading records; every read and export leaves an audit event."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.crypto import Ciphertext, KeyRing, MissingKeyError, associated_data
from clinicflow.core.errors import NotFound, ServiceUnavailable
from clinicflow.core.models import utcnow
from clinicflow.patients.repository import PatientRepository
from clinicflow.records.models import MedicalRecord, RecordVersion
from clinicflow.records.repository import RecordRepository
from clinicflow.records.schemas import (
    PatientRecordsExport,
    RecordRead,
    RecordSummary,
    RecordWithVersions,
    VersionRead,
)


def _aad(version: RecordVersion) -> bytes:
    return associated_data("medical_record", version.tenant_id, version.record_id, version.version)


def _summary(record: MedicalRecord) -> dict[str, object]:
    return {
        "id": record.id, "patient_id": record.patient_id, "kind": record.kind,
        "version": record.current_version, "created_at": record.created_at,
        "updated_at": record.updated_at,
    }  # fmt: skip


class RecordService:
    def __init__(self, session: AsyncSession, keys: KeyRing, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.keys = keys
        self.tenant_id = tenant_id
        self.records = RecordRepository(session)

    async def create(
        self, patient_id: uuid.UUID, content: str, kind: str, actor: Actor
    ) -> RecordRead:
        await self._patient(patient_id)
        record = MedicalRecord(patient_id=patient_id, kind=kind, created_by=actor.user_id)
        self.records.add(record)
        await self.session.flush()
        await self._seal(record, 1, content, actor)
        await self._audit("record.created", record, actor)
        return RecordRead(**_summary(record), content=content)

    async def list_for_patient(self, patient_id: uuid.UUID) -> list[RecordSummary]:
        await self._patient(patient_id)
        return [RecordSummary(**_summary(r)) for r in await self.records.for_patient(patient_id)]

    async def read(self, record_id: uuid.UUID, actor: Actor) -> RecordRead:
        record = await self._record(record_id)
        version = await self.records.version(record.id, record.current_version)
        assert version is not None  # written with the record
        await self._audit("record.read", record, actor)
        return RecordRead(**_summary(record), content=self._open(version))

    async def amend(self, record_id: uuid.UUID, content: str, actor: Actor) -> RecordRead:
        """A new version; the earlier ones stay as they were."""
        record = await self._record(record_id)
        record.current_version += 1
        record.updated_at = utcnow()
        await self._seal(record, record.current_version, content, actor)
        await self._audit("record.amended", record, actor)
        return RecordRead(**_summary(record), content=content)

    async def with_versions(self, record_id: uuid.UUID, actor: Actor) -> RecordWithVersions:
        record = await self._record(record_id)
        await self._audit("record.read", record, actor, {"versions": "all"})
        return await self._full(record)

    async def export_patient(self, patient_id: uuid.UUID, actor: Actor) -> PatientRecordsExport:
        await self._patient(patient_id)
        records = [await self._full(r) for r in await self.records.for_patient(patient_id)]
        await audit.record(
            self.session, "record.exported", actor=actor, subject_type="patient",
            subject_id=patient_id, details={"records": len(records)},
        )  # fmt: skip
        return PatientRecordsExport(patient_id=patient_id, exported_at=utcnow(), records=records)

    async def _full(self, record: MedicalRecord) -> RecordWithVersions:
        versions = [
            VersionRead(version=v.version, content=self._open(v), created_by=v.created_by,
                        created_at=v.created_at)
            for v in await self.records.versions(record.id)
        ]  # fmt: skip
        return RecordWithVersions(**_summary(record), versions=versions)

    async def _seal(self, record: MedicalRecord, number: int, content: str, actor: Actor) -> None:
        version = RecordVersion(
            tenant_id=self.tenant_id, record_id=record.id, version=number, key_id="",
            ciphertext=b"", created_by=actor.user_id,
        )  # fmt: skip
        sealed = self.keys.encrypt(content, aad=_aad(version))
        version.key_id, version.ciphertext = sealed.key_id, sealed.blob
        self.records.add(version)
        await self.session.flush()

    def _open(self, version: RecordVersion) -> str:
        try:
            return self.keys.decrypt(
                Ciphertext(version.key_id, version.ciphertext), aad=_aad(version)
            )
        except MissingKeyError as error:
            raise ServiceUnavailable(
                f"This record is sealed with encryption key {error.key_id!r}, which this server "
                "does not have: the operator must add it to ENCRYPTION_KEYS and restart.",
                extra={"missing_key_id": error.key_id},
            ) from error

    async def _record(self, record_id: uuid.UUID) -> MedicalRecord:
        record = await self.records.get(record_id)
        if record is None:
            raise NotFound("No record with this id.")
        return record

    async def _patient(self, patient_id: uuid.UUID) -> None:
        if await PatientRepository(self.session).get(patient_id) is None:
            raise NotFound("No patient with this id.")

    async def _audit(
        self,
        action: str,
        record: MedicalRecord,
        actor: Actor,
        extra: dict[str, object] | None = None,
    ) -> None:
        await audit.record(
            self.session, action, actor=actor, subject_type="medical_record", subject_id=record.id,
            details={"patient_id": str(record.patient_id), **(extra or {})},
        )  # fmt: skip
