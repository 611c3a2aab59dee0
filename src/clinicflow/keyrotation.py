"""Everything sealed at rest with the ENCRYPTION_KEYS ring, in one list: `records rotate-key`
re-seals it with the active key, and `serve` / `worker` refuse to start while any of it still
needs a key the ring lacks.

A new kind of sealed value is added to SEALED, or rotation leaves it behind and dropping the
old key breaks it. Only values that will be opened again are covered: a soft-deleted webhook's
secret and a sent, dead or cancelled message's payload are never read again, so a dropped key
simply leaves them unreadable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from clinicflow.core.crypto import Ciphertext, KeyRing
from clinicflow.core.database import Database
from clinicflow.core.tenancy import tenant_context
from clinicflow.integrations.models import N8nConnection
from clinicflow.integrations.service import _aad as n8n_aad
from clinicflow.notifications.models import OutboxMessage, OutboxStatus
from clinicflow.notifications.outbox import _aad as outbox_aad
from clinicflow.records.models import RecordVersion
from clinicflow.records.service import _aad as record_aad
from clinicflow.tenants.repository import TenantRepository
from clinicflow.webhooks.models import WebhookSubscription
from clinicflow.webhooks.service import _aad as webhook_aad

BATCH = 500


@dataclass(frozen=True, slots=True)
class Sealed:
    """One column sealed with the ring: its key id column, its blob, and the associated data
    its owner seals it with (imported from the owner, so the two cannot drift apart)."""

    label: str  # plural, as reported: "record versions"
    model: type[Any]
    key_id: InstrumentedAttribute[str]
    blob: InstrumentedAttribute[bytes]
    aad: Callable[[Any], bytes]
    per_practice: bool  # a tenant table (walked practice by practice, under RLS)
    still_read: ColumnElement[bool] | None = None  # rows that will be opened again

    def where(self, *conditions: ColumnElement[bool]) -> list[ColumnElement[bool]]:
        return [*conditions, *([] if self.still_read is None else [self.still_read])]


SEALED = (
    Sealed(
        "record versions", RecordVersion, RecordVersion.key_id, RecordVersion.ciphertext,
        record_aad, per_practice=True,
    ),
    Sealed(
        "webhook secrets", WebhookSubscription, WebhookSubscription.secret_key_id,
        WebhookSubscription.secret, webhook_aad, per_practice=True,
        still_read=WebhookSubscription.deleted_at.is_(None),
    ),
    Sealed(
        "n8n API keys", N8nConnection, N8nConnection.api_key_key_id, N8nConnection.api_key,
        n8n_aad, per_practice=True,
    ),
    # A platform table: account e-mails belong to no practice; the practice id of the others
    # is inside the sealed payload.
    Sealed(
        "queued messages", OutboxMessage, OutboxMessage.payload_key_id, OutboxMessage.payload,
        lambda message: outbox_aad(message.id), per_practice=False,
        still_read=OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
    ),
)  # fmt: skip


async def reseal_batch(session: AsyncSession, keys: KeyRing, sealed: Sealed) -> int:
    """Re-seal up to BATCH rows that an older key sealed; how many. The rows are locked, so a
    worker claiming messages skips them (SKIP LOCKED) until this transaction commits."""
    statement = (
        select(sealed.model)
        .where(*sealed.where(sealed.key_id != keys.active_key_id))
        .order_by(sealed.model.id)
        .limit(BATCH)
        .with_for_update()
    )
    rows = list(await session.scalars(statement))
    for row in rows:
        old = Ciphertext(getattr(row, sealed.key_id.key), getattr(row, sealed.blob.key))
        new = keys.rotate(old, aad=sealed.aad(row))
        setattr(row, sealed.key_id.key, new.key_id)
        setattr(row, sealed.blob.key, new.blob)
    await session.flush()
    return len(rows)


async def reseal_all(database: Database, keys: KeyRing) -> dict[str, int]:
    """Re-seal everything with the active key; how many of each kind. One transaction per
    practice, inside its RLS scope; the platform's queue in batches of its own."""
    counts = dict.fromkeys((sealed.label for sealed in SEALED), 0)
    async with database.sessionmaker() as session:
        tenant_ids = await TenantRepository(session).all_ids()
    for tenant_id in tenant_ids:
        async with (
            database.sessionmaker() as session,
            session.begin(),
            tenant_context(session, tenant_id),
        ):
            for sealed in (sealed for sealed in SEALED if sealed.per_practice):
                while resealed := await reseal_batch(session, keys, sealed):
                    counts[sealed.label] += resealed
    for sealed in (sealed for sealed in SEALED if not sealed.per_practice):
        while True:
            async with database.sessionmaker() as session, session.begin():
                resealed = await reseal_batch(session, keys, sealed)
            if not resealed:
                break
            counts[sealed.label] += resealed
    return counts


@dataclass(slots=True)
class Stranded:
    """Values sealed with one key the ring lacks, of one kind."""

    rows: int = 0
    practices: int = 0


async def missing_keys(database: Database, keys: KeyRing) -> dict[str, dict[str, Stranded]]:
    """Key id -> kind -> what still needs that key though the ring lacks it. Read practice by
    practice, inside each one's RLS scope, then the platform's queue."""
    missing: dict[str, dict[str, Stranded]] = {}

    async def count(session: AsyncSession, kinds: list[Sealed]) -> None:
        """One round trip for all `kinds`: (kind, key id, rows) per key id in use."""
        statement = union_all(
            *(
                select(literal(index), sealed.key_id, func.count())
                .where(*sealed.where())
                .group_by(sealed.key_id)
                for index, sealed in enumerate(kinds)
            )
        )
        for index, key_id, rows in (await session.execute(statement)).all():
            if not keys.has_key(key_id):
                sealed = kinds[index]
                found = missing.setdefault(key_id, {}).setdefault(sealed.label, Stranded())
                found.rows += rows
                found.practices += 1 if sealed.per_practice else 0

    async with database.sessionmaker() as session:
        for tenant_id in await TenantRepository(session).all_ids():
            async with tenant_context(session, tenant_id):
                await count(session, [sealed for sealed in SEALED if sealed.per_practice])
        await count(session, [sealed for sealed in SEALED if not sealed.per_practice])
    return missing


def describe_missing(missing: dict[str, dict[str, Stranded]]) -> str:
    """One line: "'dev' seals 4 record versions (1 practice), 2 queued messages"."""
    parts = []
    order = {sealed.label: index for index, sealed in enumerate(SEALED)}
    for key_id, kinds in sorted(missing.items()):
        what = ", ".join(
            f"{found.rows} {label}"
            + (f" ({found.practices} practice{'s' * (found.practices != 1)})"
               if found.practices else "")
            for label, found in sorted(kinds.items(), key=lambda item: order[item[0]])
        )  # fmt: skip
        parts.append(f"{key_id!r} seals {what}")
    return "; ".join(parts)
