"""Request and response bodies of medical records."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_CONTENT = 200_000


class RecordKind(enum.StrEnum):
    """What a record entry is; clients may filter and label by it."""

    NOTE = "note"  # free clinical note (the default)
    INTAKE = "intake"  # first consultation / anamnesis
    PROGRESS = "progress"  # session progress note
    ASSESSMENT = "assessment"  # test, scale or evaluation result
    PRESCRIPTION = "prescription"
    REFERRAL = "referral"
    DISCHARGE = "discharge"


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_CONTENT)
    kind: RecordKind = RecordKind.NOTE


class RecordAmend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_CONTENT)


class RecordSummary(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    kind: str
    version: int
    created_at: datetime
    updated_at: datetime


class RecordRead(RecordSummary):
    content: str


class VersionRead(BaseModel):
    version: int
    content: str
    created_by: uuid.UUID | None
    created_at: datetime


class RecordList(BaseModel):
    items: list[RecordSummary]
    next_cursor: str | None = None


class RecordWithVersions(RecordSummary):
    versions: list[VersionRead]


class PatientRecordsExport(BaseModel):
    patient_id: uuid.UUID
    exported_at: datetime
    records: list[RecordWithVersions]
