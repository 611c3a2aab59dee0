"""Every model, imported once so Alembic and the mappers see the whole schema."""

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent
from clinicflow.auth.models import AuthSession, RefreshToken
from clinicflow.core.models import Base
from clinicflow.tenants.models import Membership, Plan, Tenant
from clinicflow.users.models import User

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Base",
    "Membership",
    "Plan",
    "PlatformAuditEvent",
    "RefreshToken",
    "Tenant",
    "User",
]
