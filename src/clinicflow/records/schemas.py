"""Request and response bodies of medical records."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from clinicflow.core.pagination import NEXT_CURSOR

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

    content: str = Field(
        min_length=1,
        max_length=MAX_CONTENT,
        description="The clinical text (up to 200,000 characters); stored encrypted.",
        examples=["Patient reports better sleep since the last session."],
    )
    kind: RecordKind = Field(
        default=RecordKind.NOTE,
        description="What the entry is (default note).",
        examples=["progress"],
    )


class RecordAmend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(
        min_length=1,
        max_length=MAX_CONTENT,
        description="The full new text; it becomes the next version.",
        examples=["Patient reports better sleep; anxiety lower."],
    )


class RecordSummary(BaseModel):
    id: uuid.UUID = Field(description="Record id.")
    patient_id: uuid.UUID = Field(description="The patient.")
    kind: str = Field(
        description="note, intake, progress, assessment, prescription, referral or discharge.",
    )
    version: int = Field(description="The current version number (1 when never amended).")
    created_at: datetime = Field(description="When the record was written.")
    updated_at: datetime = Field(description="When it was last amended.")


class RecordRead(RecordSummary):
    content: str = Field(description="The current version's text, decrypted.")


class VersionRead(BaseModel):
    version: int = Field(description="Version number, from 1.")
    content: str = Field(description="This version's text, decrypted.")
    created_by: uuid.UUID | None = Field(description="The member who wrote this version.")
    created_at: datetime = Field(description="When this version was written.")


class RecordList(BaseModel):
    items: list[RecordSummary] = Field(
        description="The patient's records, oldest first, without content (a page of them).",
    )
    next_cursor: str | None = Field(
        default=None,
        description=NEXT_CURSOR,
    )


class RecordWithVersions(RecordSummary):
    versions: list[VersionRead] = Field(description="Every version, oldest first.")


class PatientRecordsExport(BaseModel):
    patient_id: uuid.UUID = Field(description="The patient.")
    exported_at: datetime = Field(description="When the export was made.")
    records: list[RecordWithVersions] = Field(description="Every record with all its versions.")
