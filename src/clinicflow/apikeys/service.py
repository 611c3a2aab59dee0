"""Issuing, rotating and revoking a practice's API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.apikeys import keys
from clinicflow.apikeys.models import ApiKey
from clinicflow.apikeys.repository import ApiKeyRepository
from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.errors import Conflict, NotFound, ValidationFailed
from clinicflow.core.models import utcnow
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.service import ensure_api_access


@dataclass(frozen=True, slots=True)
class IssuedKey:
    row: ApiKey
    secret: str


class ApiKeyService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.keys = ApiKeyRepository(session)

    async def create(
        self,
        tenant_id: uuid.UUID,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
        actor: Actor,
    ) -> IssuedKey:
        if expires_at is not None and expires_at <= utcnow():
            raise ValidationFailed(
                "expires_at must be in the future.",
                errors=[{"field": "expires_at", "message": "In the past.", "type": "value_error"}],
            )
        tenant = await TenantRepository(self.session).get(tenant_id)
        if tenant is None:
            raise NotFound("No practice with this id.")
        await ensure_api_access(self.session, tenant)
        issued = await self._issue(tenant_id, name, scopes, expires_at, actor)
        await audit.record(
            self.session, "api_key.created", actor=actor, subject_type="api_key",
            subject_id=issued.row.id, details={"name": name, "scopes": scopes},
        )  # fmt: skip
        return issued

    async def list_active(self) -> list[ApiKey]:
        return await self.keys.list_active(utcnow())

    async def rotate(self, key_id: uuid.UUID, grace_seconds: int, actor: Actor) -> IssuedKey:
        """A new secret with the same name and scopes; the old one lives `grace_seconds` more.
        Only a live key that has not been rotated yet: an expired key would hand its expiry,
        already past, to a dead new key (404, like a revoked one); a key in its grace period
        was replaced already, and another successor would make two live secrets (409)."""
        now = utcnow()
        old = await self.keys.lock_live(key_id, now)
        if old is None:
            raise NotFound("No live API key with this id (it may have expired or been revoked).")
        if old.rotated_at is not None:
            ends = f" until {old.expires_at.isoformat()}" if old.expires_at else ""
            raise Conflict(
                f"This API key was rotated already; its secret works only through the grace "
                f"period{ends}. Rotate the key that replaced it, or revoke this one."
            )
        expires_at = old.expires_at  # the new secret keeps the key's expiry
        grace_end = now + timedelta(seconds=grace_seconds)
        old.rotated_at = now
        if grace_seconds == 0:
            old.revoked_at = now
        elif old.expires_at is None or old.expires_at > grace_end:
            old.expires_at = grace_end
        issued = await self._issue(old.tenant_id, old.name, old.scopes, expires_at, actor)
        await audit.record(
            self.session, "api_key.rotated", actor=actor, subject_type="api_key",
            subject_id=old.id,
            details={"new_key_id": str(issued.row.id), "grace_seconds": grace_seconds},
        )  # fmt: skip
        return issued

    async def revoke(self, key_id: uuid.UUID, actor: Actor) -> None:
        key = await self._get(key_id)
        key.revoked_at = utcnow()
        await audit.record(
            self.session, "api_key.revoked", actor=actor, subject_type="api_key", subject_id=key.id
        )

    async def confirm(self, key_id: uuid.UUID, actor: Actor) -> ApiKey:
        """Lift the suspension a password reset put on a key: the owner vouches for it."""
        key = await self._get(key_id)
        if key.suspended_at is not None:
            key.suspended_at = None
            await audit.record(
                self.session, "api_key.confirmed", actor=actor, subject_type="api_key",
                subject_id=key.id,
            )  # fmt: skip
        return key

    async def _get(self, key_id: uuid.UUID) -> ApiKey:
        key = await self.keys.get(key_id)
        if key is None:
            raise NotFound("No API key with this id.")
        return key

    async def _issue(
        self,
        tenant_id: uuid.UUID,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
        actor: Actor,
    ) -> IssuedKey:
        secret, prefix, secret_hash = keys.new_key(tenant_id)
        row = ApiKey(
            tenant_id=tenant_id, name=name, prefix=prefix, secret_hash=secret_hash,
            scopes=scopes, created_by=actor.user_id, expires_at=expires_at,
        )  # fmt: skip
        self.keys.add(row)
        await self.session.flush()
        return IssuedKey(row, secret)
