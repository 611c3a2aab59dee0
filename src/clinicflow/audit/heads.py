"""Chain heads kept outside the database, so that a dropped tail shows.

After each commit, the last (seq, MAC) of every chain the transaction appended to is written,
signed with the audit key, as a JSON line to AUDIT_HEAD_FILE (and to the log). Someone able to
delete the newest events in the database cannot also make those lines disappear from where the
operator keeps them (a file shipped elsewhere, a log sink); `clinicflow audit verify` reads them
and fails when the database's chain ends before a head it once had.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.database import AUDIT_HEAD_FILE_INFO, AUDIT_KEY_INFO, run_after_commit
from clinicflow.core.models import utcnow

HEADS_INFO = "audit_heads"  # session.info: chain -> (seq, mac) appended in this transaction
PLATFORM = "platform"
logger = structlog.get_logger("clinicflow.audit")


@dataclass(frozen=True, slots=True)
class Head:
    chain: str
    seq: int
    mac: str


def chain_name(tenant_id: uuid.UUID | None) -> str:
    return str(tenant_id) if tenant_id else PLATFORM


def remember(session: AsyncSession, tenant_id: uuid.UUID | None, seq: int, mac: str) -> None:
    """Note the chain's new head; the first call in a transaction schedules the export."""
    pending: dict[str, tuple[int, str]] | None = session.info.get(HEADS_INFO)
    if pending is None:
        pending = session.info[HEADS_INFO] = {}
        key: bytes = session.info[AUDIT_KEY_INFO]
        path: Path | None = session.info.get(AUDIT_HEAD_FILE_INFO)

        async def export() -> None:  # a coroutine function: background tasks await it
            await _export(key, path, pending)

        run_after_commit(session, export)
    pending[chain_name(tenant_id)] = (seq, mac)


def signature(key: bytes, head: Head) -> str:
    message = f"{head.chain}:{head.seq}:{head.mac}".encode()
    return hmac.new(key, b"head:" + message, hashlib.sha256).hexdigest()


async def _export(key: bytes, path: Path | None, pending: dict[str, tuple[int, str]]) -> None:
    lines = []
    for chain, (seq, mac) in pending.items():
        head = Head(chain, seq, mac)
        record = {"chain": chain, "seq": seq, "mac": mac, "at": utcnow().isoformat(),
                  "sig": signature(key, head)}  # fmt: skip
        logger.info("audit.head", **record)
        lines.append(json.dumps(record, separators=(",", ":")))
    if path is not None:
        await asyncio.to_thread(_append, path, lines)


def _append(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as sink:  # small appends: atomic across processes
        sink.write("".join(line + "\n" for line in lines))


def latest_heads(key: bytes, path: Path) -> tuple[dict[str, Head], int]:
    """The highest signed head of each chain in the file, and how many lines failed their
    signature (a forged line counts against the file, it never passes)."""
    latest: dict[str, Head] = {}
    forged = 0
    if not path.exists():
        return latest, forged
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            head = Head(str(record["chain"]), int(record["seq"]), str(record["mac"]))
            valid = hmac.compare_digest(str(record["sig"]), signature(key, head))
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            forged += 1
        elif head.chain not in latest or head.seq > latest[head.chain].seq:
            latest[head.chain] = head
    return latest, forged
