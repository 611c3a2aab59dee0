"""Patient rules: custom fields per practice, plan limits, owner-only soft delete."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.errors import NotFound, PlanLimitExceeded
from clinicflow.core.models import utcnow
from clinicflow.notifications.outbox import Outbox
from clinicflow.notifications.reminders import replan_patient_reminders
from clinicflow.patients import custom_fields
from clinicflow.patients.models import Patient, PatientView
from clinicflow.patients.repository import PatientFilters, PatientRepository
from clinicflow.patients.schemas import PatientCreate, PatientUpdate
from clinicflow.patients.search import search_terms, search_text
from clinicflow.tenants.models import Tenant
from clinicflow.tenants.repository import TenantRepository
from clinicflow.webhooks.service import emit


class PatientService:
    def __init__(
        self, session: AsyncSession, tenant_id: uuid.UUID, outbox: Outbox | None = None
    ) -> None:
        """`outbox` carries the webhook events; only read-only callers may leave it out."""
        self.session = session
        self.tenant_id = tenant_id
        self.outbox = outbox
        self.patients = PatientRepository(session)

    async def create(self, data: PatientCreate, actor: Actor) -> Patient:
        tenant = await self._tenant()
        await self._ensure_capacity(tenant)
        definitions = custom_fields.definitions_from(tenant.settings)
        values = data.model_dump(exclude={"custom_fields"})
        patient = Patient(
            **values, custom_fields=custom_fields.clean(definitions, data.custom_fields)
        )
        patient.search_text = search_text(
            patient.full_name, patient.email, patient.phone, patient.document
        )
        self.patients.add(patient)
        await self.session.flush()
        self.patients.add_terms(patient.id, patient.full_name, _terms(patient))
        await audit.record(
            self.session, "patient.created", actor=actor, subject_type="patient",
            subject_id=patient.id,
        )  # fmt: skip
        await emit(self.session, self.outbox, "patient.created", _event_data(patient))
        return patient

    async def get(self, patient_id: uuid.UUID, *, lock: bool = False) -> Patient:
        patient = await self.patients.get(patient_id, lock=lock)
        if patient is None:
            raise NotFound("No patient with this id.")
        return patient

    async def names(self, patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        return await self.patients.names(patient_ids) if patient_ids else {}

    async def page(
        self, filters: PatientFilters, limit: int, after: tuple[str, uuid.UUID] | None
    ) -> tuple[list[PatientView], bool]:
        rows = await self.patients.page(filters, limit, after)
        return rows[:limit], len(rows) > limit

    async def read(self, patient_id: uuid.UUID, actor: Actor) -> Patient:
        """One patient's record as the API shows it: who looked is audited."""
        patient = await self.get(patient_id)
        await audit.record(
            self.session, "patient.read", actor=actor, subject_type="patient",
            subject_id=patient.id,
        )  # fmt: skip
        return patient

    async def update(self, patient_id: uuid.UUID, changes: PatientUpdate, actor: Actor) -> Patient:
        # Locked and read afresh: an update racing a delete would otherwise rename the patient
        # just deleted and give it search terms again.
        patient = await self.get(patient_id, lock=True)
        addressed = (patient.email, patient.full_name)  # what a reminder is sent to and greets
        sent = changes.model_dump(exclude_unset=True)
        if "custom_fields" in sent:
            definitions = custom_fields.definitions_from((await self._tenant()).settings)
            # A value whose field the practice has since removed is dropped, not refused:
            # otherwise removing a field would make every patient holding it uneditable.
            defined = {definition.key for definition in definitions}
            kept = {key: value for key, value in patient.custom_fields.items() if key in defined}
            merged = {**kept, **(sent.pop("custom_fields") or {})}
            merged = {key: value for key, value in merged.items() if value is not None}
            patient.custom_fields = custom_fields.clean(definitions, merged)
        for field, value in sent.items():
            if field == "full_name" and value is None:
                continue
            setattr(patient, field, value)
        patient.search_text = search_text(
            patient.full_name, patient.email, patient.phone, patient.document
        )
        await self.patients.replace_terms(patient.id, patient.full_name, _terms(patient))
        await self.session.flush()
        await audit.record(
            self.session, "patient.updated", actor=actor, subject_type="patient",
            subject_id=patient.id, details={"fields": sorted(changes.model_fields_set)},
        )  # fmt: skip
        if (patient.email, patient.full_name) != addressed:
            await replan_patient_reminders(self.session, self._outbox(), patient)
        await emit(self.session, self.outbox, "patient.updated", _event_data(patient))
        return patient

    async def delete(self, patient_id: uuid.UUID, actor: Actor) -> None:
        """Soft: kept for the retention period, gone from every read. Their appointments stay
        on the agenda as they are (the practice cancels what will not happen), but no
        reminder is sent to a deleted patient: the pending ones are dropped."""
        patient = await self.get(patient_id, lock=True)
        patient.deleted_at = utcnow()
        patient.active = False
        await self.patients.remove_terms(patient.id)
        await replan_patient_reminders(self.session, self._outbox(), patient)
        await audit.record(
            self.session,
            "patient.deleted",
            actor=actor,
            subject_type="patient",
            subject_id=patient.id,
        )

    def _outbox(self) -> Outbox:
        if self.outbox is None:
            raise RuntimeError("PatientService needs the outbox to change patients")
        return self.outbox

    async def _tenant(self) -> Tenant:
        tenant = await TenantRepository(self.session).get(self.tenant_id)
        if tenant is None:
            raise NotFound("Practice not found.")
        return tenant

    async def _ensure_capacity(self, tenant: Tenant) -> None:
        if tenant.plan_id is None:
            return
        plan = await TenantRepository(self.session).get_plan(tenant.plan_id)
        if plan is None or plan.max_patients is None:
            return
        await TenantRepository(self.session).lock(tenant.id)  # parallel creates count in turn
        if await self.patients.count_active() >= plan.max_patients:
            raise PlanLimitExceeded(
                f"The {plan.name} plan allows at most {plan.max_patients} patients.",
                extra={"limit": "max_patients", "max": plan.max_patients},
            )


def _terms(patient: Patient) -> set[str]:
    return search_terms(patient.full_name, patient.email, patient.phone, patient.document)


def _event_data(patient: Patient) -> dict[str, object]:
    """What webhook receivers get: contact details, never front-desk notes or documents."""
    return {
        "id": str(patient.id),
        "full_name": patient.full_name,
        "email": patient.email,
        "phone": patient.phone,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "active": patient.active,
    }
