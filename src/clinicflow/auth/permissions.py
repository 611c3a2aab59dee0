"""The permission vocabulary and what each role holds (SPEC §2), read by one dependency."""

from __future__ import annotations

import enum


class Permission(enum.StrEnum):
    PATIENTS_READ = "patients:read"
    PATIENTS_WRITE = "patients:write"
    PATIENTS_DELETE = "patients:delete"
    APPOINTMENTS_READ = "appointments:read"
    APPOINTMENTS_WRITE = "appointments:write"
    AVAILABILITY_READ = "availability:read"
    RECORDS_READ = "records:read"
    RECORDS_WRITE = "records:write"
    FINANCE_READ = "finance:read"
    FINANCE_WRITE = "finance:write"
    NOTIFICATIONS_SEND = "notifications:send"
    METRICS_READ = "metrics:read"
    EXPORTS_READ = "exports:read"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    SETTINGS_READ = "settings:read"
    SETTINGS_MANAGE = "settings:manage"
    # What a receptionist or bot needs to act on the agenda: name, time zone, working hours,
    # professionals, custom-field definitions; nothing else of the settings.
    PRACTICE_READ = "practice:read"
    API_KEYS_MANAGE = "api_keys:manage"
    INTEGRATIONS_MANAGE = "integrations:manage"
    AUDIT_READ = "audit:read"
    PLATFORM_TENANTS = "platform:tenants"
    PLATFORM_USERS = "platform:users"
    PLATFORM_AUDIT = "platform:audit"
    PLATFORM_METRICS = "platform:metrics"


PLATFORM_ADMIN = "platform_admin"
_PLATFORM = frozenset(p for p in Permission if p.value.startswith("platform:"))
_TENANT = frozenset(Permission) - _PLATFORM

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    # Never any clinical permission: the operator runs the platform, not the practices.
    PLATFORM_ADMIN: _PLATFORM,
    "owner": _TENANT,
    "assistant": frozenset(
        {
            Permission.PATIENTS_READ,
            Permission.PATIENTS_WRITE,
            Permission.APPOINTMENTS_READ,
            Permission.APPOINTMENTS_WRITE,
            Permission.AVAILABILITY_READ,
            Permission.FINANCE_READ,
            Permission.FINANCE_WRITE,
            Permission.NOTIFICATIONS_SEND,
            Permission.METRICS_READ,
            Permission.EXPORTS_READ,
            Permission.MEMBERS_READ,
            Permission.SETTINGS_READ,
            Permission.PRACTICE_READ,
        }
    ),
    "viewer": frozenset(
        {
            Permission.APPOINTMENTS_READ,
            Permission.AVAILABILITY_READ,
            Permission.METRICS_READ,
            Permission.PRACTICE_READ,
        }
    ),
}

# What an API key may be granted (SPEC §2): never records, finance, settings.
API_KEY_SCOPES = frozenset(
    {
        Permission.PATIENTS_READ,
        Permission.PATIENTS_WRITE,
        Permission.APPOINTMENTS_READ,
        Permission.APPOINTMENTS_WRITE,
        Permission.AVAILABILITY_READ,
        Permission.METRICS_READ,
        Permission.PRACTICE_READ,
    }
)
