"""Every model, imported once so Alembic and the mappers see the whole schema."""

from clinicflow.apikeys.models import ApiKey
from clinicflow.appointments.models import Appointment, AppointmentStatusChange
from clinicflow.audit.models import AuditEvent, AuditLegacyExtent, PlatformAuditEvent
from clinicflow.auth.models import AccountToken, AuthSession, RefreshToken
from clinicflow.calendar.models import CalendarToken
from clinicflow.core.models import Base
from clinicflow.finance.models import FinancialEntry
from clinicflow.integrations.models import N8nConnection
from clinicflow.invitations.models import Invitation
from clinicflow.notifications.models import Notification, OutboxMessage
from clinicflow.patients.models import Patient, PatientSearchTerm
from clinicflow.records.models import MedicalRecord, RecordVersion
from clinicflow.tenants.models import Membership, Plan, Tenant
from clinicflow.users.models import User
from clinicflow.webhooks.models import WebhookSubscription

__all__ = [
    "AccountToken",
    "ApiKey",
    "Appointment",
    "AppointmentStatusChange",
    "AuditEvent",
    "AuditLegacyExtent",
    "AuthSession",
    "Base",
    "CalendarToken",
    "FinancialEntry",
    "Invitation",
    "MedicalRecord",
    "Membership",
    "N8nConnection",
    "Notification",
    "OutboxMessage",
    "Patient",
    "PatientSearchTerm",
    "Plan",
    "PlatformAuditEvent",
    "RecordVersion",
    "RefreshToken",
    "Tenant",
    "User",
    "WebhookSubscription",
]
