"""Every route in the OpenAPI document, for every role: allowed, 401 or 403, from ONE table.

A route added without a row here fails `test_every_route_has_a_rule`. The rule names the permission
the route must demand; the expected outcome per role is derived from ROLE_PERMISSIONS, so a route
guarded by the wrong permission (or none) fails too.
"""

from __future__ import annotations

import re
import uuid
from typing import Literal

import httpx
import pytest
from fastapi import FastAPI

from clinicflow.auth.permissions import (
    API_KEY_SCOPES,
    PLATFORM_ADMIN,
    ROLE_PERMISSIONS,
    Permission,
)
from clinicflow.main import create_app
from tests.conftest import make_test_settings
from tests.factories import make_api_key, make_member, make_platform_admin

P = Permission
# "member": a logged-in user inside a practice (no API key, no platform admin outside one).
Rule = Permission | frozenset[Permission] | Literal["public", "authenticated", "member"]
INVITER = frozenset({P.MEMBERS_MANAGE, P.PLATFORM_USERS})  # owner in own practice, admin in any

# (method, path) -> what the route demands.
ROUTE_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/"): "public",
    ("GET", "/health"): "public",
    ("GET", "/health/ready"): "public",
    ("GET", "/metrics"): "public",
    ("POST", "/api/v1/auth/login"): "public",
    ("POST", "/api/v1/auth/token"): "public",
    ("POST", "/api/v1/auth/refresh"): "public",
    ("POST", "/api/v1/auth/logout"): "authenticated",
    ("POST", "/api/v1/auth/logout-all"): "authenticated",
    ("GET", "/api/v1/auth/sessions"): "authenticated",
    ("DELETE", "/api/v1/auth/sessions/{session_id}"): "authenticated",
    ("GET", "/api/v1/auth/me"): "authenticated",
    ("POST", "/api/v1/auth/register"): "public",
    ("POST", "/api/v1/auth/forgot-password"): "public",
    ("POST", "/api/v1/auth/reset-password"): "public",
    ("POST", "/api/v1/auth/verify-email"): "public",
    ("POST", "/api/v1/auth/verify-email/resend"): "authenticated",
    ("POST", "/api/v1/invitations"): INVITER,
    ("GET", "/api/v1/invitations"): INVITER,
    ("POST", "/api/v1/invitations/accept"): "public",
    ("GET", "/api/v1/invitations/{token}"): "public",
    ("DELETE", "/api/v1/invitations/{invitation_id}"): INVITER,
    ("GET", "/api/v1/audit-events"): frozenset({P.AUDIT_READ, P.PLATFORM_AUDIT}),
    ("POST", "/api/v1/api-keys"): P.API_KEYS_MANAGE,
    ("GET", "/api/v1/api-keys"): P.API_KEYS_MANAGE,
    ("POST", "/api/v1/api-keys/{key_id}/rotate"): P.API_KEYS_MANAGE,
    ("POST", "/api/v1/api-keys/{key_id}/confirm"): P.API_KEYS_MANAGE,
    ("DELETE", "/api/v1/api-keys/{key_id}"): P.API_KEYS_MANAGE,
    ("POST", "/api/v1/patients"): P.PATIENTS_WRITE,
    ("GET", "/api/v1/patients"): P.PATIENTS_READ,
    ("GET", "/api/v1/patients/{patient_id}"): P.PATIENTS_READ,
    ("PATCH", "/api/v1/patients/{patient_id}"): P.PATIENTS_WRITE,
    ("DELETE", "/api/v1/patients/{patient_id}"): P.PATIENTS_DELETE,
    ("POST", "/api/v1/appointments"): P.APPOINTMENTS_WRITE,
    ("GET", "/api/v1/appointments"): P.APPOINTMENTS_READ,
    ("GET", "/api/v1/appointments/{appointment_id}"): P.APPOINTMENTS_READ,
    ("PATCH", "/api/v1/appointments/{appointment_id}"): P.APPOINTMENTS_WRITE,
    ("DELETE", "/api/v1/appointments/{appointment_id}"): P.APPOINTMENTS_WRITE,
    ("POST", "/api/v1/appointments/{appointment_id}/status"): P.APPOINTMENTS_WRITE,
    ("GET", "/api/v1/appointments/{appointment_id}/history"): P.APPOINTMENTS_READ,
    ("POST", "/api/v1/patients/{patient_id}/records"): P.RECORDS_WRITE,
    ("GET", "/api/v1/patients/{patient_id}/records"): P.RECORDS_READ,
    ("GET", "/api/v1/patients/{patient_id}/records/export"): P.RECORDS_READ,
    ("GET", "/api/v1/records/{record_id}"): P.RECORDS_READ,
    ("GET", "/api/v1/records/{record_id}/versions"): P.RECORDS_READ,
    ("PATCH", "/api/v1/records/{record_id}"): P.RECORDS_WRITE,
    ("POST", "/api/v1/financial-entries"): P.FINANCE_WRITE,
    ("GET", "/api/v1/financial-entries"): P.FINANCE_READ,
    ("GET", "/api/v1/exports/patients"): P.EXPORTS_READ,
    ("GET", "/api/v1/exports/appointments"): P.EXPORTS_READ,
    ("GET", "/api/v1/exports/financial-entries"): P.EXPORTS_READ,
    ("GET", "/api/v1/patients/{patient_id}/export"): P.EXPORTS_READ,
    ("GET", "/api/v1/fhir/metadata"): "public",
    ("POST", "/api/v1/calendar/token"): "member",
    ("DELETE", "/api/v1/calendar/token"): "member",
    ("GET", "/api/v1/calendar.ics"): "public",
    ("GET", "/api/v1/fhir/Patient"): P.PATIENTS_READ,
    ("GET", "/api/v1/fhir/Patient/{patient_id}"): P.PATIENTS_READ,
    ("GET", "/api/v1/fhir/Appointment"): P.APPOINTMENTS_READ,
    ("GET", "/api/v1/fhir/Appointment/{appointment_id}"): P.APPOINTMENTS_READ,
    ("GET", "/api/v1/financial-entries/summary"): P.FINANCE_READ,
    ("GET", "/api/v1/financial-entries/{entry_id}"): P.FINANCE_READ,
    ("PATCH", "/api/v1/financial-entries/{entry_id}"): P.FINANCE_WRITE,
    ("DELETE", "/api/v1/financial-entries/{entry_id}"): P.FINANCE_WRITE,
    ("POST", "/api/v1/appointments/{appointment_id}/charge"): P.FINANCE_WRITE,
    ("GET", "/api/v1/users/me"): "authenticated",
    ("GET", "/api/v1/users/me/practices"): "authenticated",
    ("PUT", "/api/v1/users/me"): "authenticated",
    ("POST", "/api/v1/users/me/change-password"): "authenticated",
    ("POST", "/api/v1/users"): P.PLATFORM_USERS,
    ("GET", "/api/v1/users"): P.PLATFORM_USERS,
    ("GET", "/api/v1/users/{user_id}"): P.PLATFORM_USERS,
    ("PUT", "/api/v1/users/{user_id}"): P.PLATFORM_USERS,
    ("DELETE", "/api/v1/users/{user_id}"): P.PLATFORM_USERS,
    ("POST", "/api/v1/users/{user_id}/unlock"): P.PLATFORM_USERS,
    ("GET", "/api/v1/tenant"): P.SETTINGS_READ,
    ("GET", "/api/v1/tenant/practice"): P.PRACTICE_READ,
    ("GET", "/api/v1/tenant/professionals"): P.PRACTICE_READ,
    ("PATCH", "/api/v1/tenant"): P.SETTINGS_MANAGE,
    ("POST", "/api/v1/tenants"): P.PLATFORM_TENANTS,
    ("GET", "/api/v1/tenants"): P.PLATFORM_TENANTS,
    ("GET", "/api/v1/tenants/{tenant_id}"): P.PLATFORM_TENANTS,
    ("PATCH", "/api/v1/tenants/{tenant_id}"): P.PLATFORM_TENANTS,
    ("DELETE", "/api/v1/tenants/{tenant_id}"): P.PLATFORM_TENANTS,
    ("PUT", "/api/v1/tenants/{tenant_id}/read-only"): P.PLATFORM_TENANTS,
    ("PUT", "/api/v1/tenants/{tenant_id}/plan"): P.PLATFORM_TENANTS,
    ("GET", "/api/v1/plans"): P.PLATFORM_TENANTS,
    ("POST", "/api/v1/plans"): P.PLATFORM_TENANTS,
    ("PATCH", "/api/v1/plans/{plan_id}"): P.PLATFORM_TENANTS,
    ("GET", "/api/v1/availability"): P.AVAILABILITY_READ,
    ("GET", "/api/v1/tenant/members"): P.MEMBERS_READ,
    ("PATCH", "/api/v1/tenant/members/{user_id}"): P.MEMBERS_MANAGE,
    ("DELETE", "/api/v1/tenant/members/{user_id}"): P.MEMBERS_MANAGE,
    ("POST", "/api/v1/notifications"): P.NOTIFICATIONS_SEND,
    ("GET", "/api/v1/notifications"): P.NOTIFICATIONS_SEND,
    # No API-key scope holds integrations:manage: an agent's key cannot (re)route events.
    ("POST", "/api/v1/webhooks"): P.INTEGRATIONS_MANAGE,
    ("GET", "/api/v1/webhooks"): P.INTEGRATIONS_MANAGE,
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): P.INTEGRATIONS_MANAGE,
    ("POST", "/api/v1/webhooks/{webhook_id}/ping"): P.INTEGRATIONS_MANAGE,
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): P.INTEGRATIONS_MANAGE,
    ("PUT", "/api/v1/integrations/n8n"): P.INTEGRATIONS_MANAGE,
    ("GET", "/api/v1/integrations/n8n"): P.INTEGRATIONS_MANAGE,
    ("DELETE", "/api/v1/integrations/n8n"): P.INTEGRATIONS_MANAGE,
    ("GET", "/api/v1/metrics/me"): P.METRICS_READ,
    ("GET", "/api/v1/metrics/me/workflows"): P.METRICS_READ,
    ("GET", "/api/v1/metrics/tenants"): P.PLATFORM_METRICS,
    ("GET", "/api/v1/metrics/tenants/{tenant_id}"): P.PLATFORM_METRICS,
    ("GET", "/api/v1/metrics/tenants/{tenant_id}/workflows"): P.PLATFORM_METRICS,
}

ROLES = ("anonymous", PLATFORM_ADMIN, "owner", "assistant", "viewer", "api_key")
# The "api_key" role is a key holding every scope a key may hold.


def _routes() -> list[tuple[str, str]]:
    spec = create_app(make_test_settings()).openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


ROUTES = _routes()


def expected(rule: Rule, role: str) -> Literal["allow", 401, 403]:
    if rule == "public":
        return "allow"
    if role == "anonymous":
        return 401
    if rule == "authenticated":
        return 401 if role == "api_key" else "allow"  # user-only routes take no key
    if rule == "member":
        return 401 if role == "api_key" else 403 if role == PLATFORM_ADMIN else "allow"
    needed = rule if isinstance(rule, frozenset) else frozenset({rule})
    granted = API_KEY_SCOPES if role == "api_key" else ROLE_PERMISSIONS[role]
    return "allow" if needed & granted else 403


def test_every_route_has_a_rule() -> None:
    missing = [route for route in ROUTES if route not in ROUTE_RULES]
    stale = [route for route in ROUTE_RULES if route not in ROUTES]
    assert missing == [], f"routes without a permission rule: {missing}"
    assert stale == [], f"rules for routes that no longer exist: {stale}"


def test_platform_admin_holds_no_clinical_permission() -> None:
    clinical = {p for p in Permission if not p.value.startswith("platform:")}
    assert ROLE_PERMISSIONS[PLATFORM_ADMIN] & clinical == set()


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_route_answers_each_role_as_the_table_says(
    client: httpx.AsyncClient, db: FastAPI, method: str, path: str
) -> None:
    rule = ROUTE_RULES.get((method, path))
    assert rule is not None, f"no rule for {method} {path}"
    url = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)
    tenant_id = None
    for role in ROLES:
        headers: dict[str, str] = {}
        if role == PLATFORM_ADMIN:
            headers = (await make_platform_admin(db)).headers
        elif role == "api_key":
            assert tenant_id is not None
            secret = await make_api_key(db, tenant_id, sorted(API_KEY_SCOPES))
            headers = {"X-API-Key": secret}
        elif role != "anonymous":
            member = await make_member(db, role=role, tenant_id=tenant_id)
            tenant_id = member.tenant_id
            headers = member.headers
        response = await client.request(method, url, headers=headers, json={})
        outcome = expected(rule, role)
        if outcome == "allow":
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == outcome, (role, response.text)
