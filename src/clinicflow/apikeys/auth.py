"""Authenticating a request by its X-API-Key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.apikeys import keys
from clinicflow.apikeys.models import ApiKey
from clinicflow.apikeys.repository import ApiKeyRepository
from clinicflow.auth.permissions import API_KEY_SCOPES, Permission
from clinicflow.core.database import keep_books_after_commit
from clinicflow.core.errors import NotAuthenticated, PermissionDenied
from clinicflow.core.models import utcnow
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.tenants.models import Tenant
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.service import plan_allows_api

_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    key: ApiKey
    tenant: Tenant
    permissions: frozenset[Permission]
    touched: bool  # last_used_at is written once this request commits


async def authenticate_key(session: AsyncSession, presented: str) -> AuthenticatedKey:
    invalid = NotAuthenticated("The API key is invalid, expired or revoked.", headers={})
    tenant_id = keys.tenant_of(presented)
    if tenant_id is None:
        raise invalid
    await set_session_tenant(session, tenant_id)
    repository = ApiKeyRepository(session)
    key = await repository.get_by_hash(keys.hash_key(presented))
    now = utcnow()
    if key is None or key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
        raise invalid
    if key.suspended_at is not None:
        raise NotAuthenticated(
            "The API key is suspended since its creator's password was reset; the practice "
            "owner can confirm it in the key list.",
            headers={},
        )
    tenant = await TenantRepository(session).get(tenant_id)
    if tenant is None:
        raise invalid
    if not await plan_allows_api(session, tenant):
        raise PermissionDenied("This practice's plan does not include API access.")
    touched = key.last_used_at is None or now - key.last_used_at > _TOUCH_INTERVAL
    if touched:
        keep_books_after_commit(
            session, tenant_id, lambda books: ApiKeyRepository(books).touch(key.id, now)
        )
    granted = frozenset(Permission(scope) for scope in key.scopes) & API_KEY_SCOPES
    return AuthenticatedKey(key, tenant, granted, touched)
