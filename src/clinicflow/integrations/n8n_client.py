"""The part of n8n's public API that automation metrics need (`X-N8N-API-KEY`).

`GET /api/v1/workflows` and `GET /api/v1/executions` answer `{"data": [...], "nextCursor": ...}`;
executions come newest first, so paging stops at the first one older than the period. Every way
n8n can fail (down, slow, refusing the key, answering garbage) becomes a 502 or 504 problem that
names the cause; a practice's broken n8n is never our 500.

Each page is validated (pydantic, below) before anything is computed from it: an answer that is
JSON but not the public API's shape (a `data` of strings, a workflow without an id, a time that
is not ISO 8601) is a 502 naming the page and the field. Only what the figures use is checked;
other fields n8n adds are ignored. A time without an offset is read as UTC, which is what n8n
stores and serves (its API writes `Z`); a naive time comes from an older version or a proxy
rewriting the JSON, never from another zone. An execution that has not started (`startedAt`
null: queued) is not counted. One that stopped before it started (`stoppedAt` earlier than
`startedAt`: the clocks of n8n's main and worker processes disagree, or a record was edited) is
counted, with its duration unknown, as a run still going is: its stop time is dropped
(`Execution.stopped_at` None), so no figure is ever a negative duration. It is not refused as a
malformed page: the record has the public API's shape, and one bad clock must not take the
practice's whole dashboard down with a 502.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Generic, TypeVar

import httpx
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from clinicflow.core.errors import ClinicFlowError
from clinicflow.webhooks.delivery import UnsafeWebhookURL, outbound_client

PAGE_SIZE = 250  # n8n's largest page
# 10,000 executions (or workflows) a read at most: a huge history cannot hang a request. When
# the period holds more, the answer says so (`History.complete`, the metrics' `truncated`).
MAX_PAGES = 40
# A page of 250 executions is a few hundred KB; far past that is not n8n (or not a sane one),
# and reading it whole would hold its size in the worker's memory.
MAX_PAGE_BYTES = 8 * 1024 * 1024


class N8nError(ClinicFlowError):
    """Anything that kept a practice's n8n from answering usefully."""

    status_code: ClassVar[int] = 502
    title: ClassVar[str] = "n8n unavailable"
    slug: ClassVar[str] = "n8n-unavailable"


class N8nUnavailable(N8nError):
    pass


class N8nTimeout(N8nError):
    status_code: ClassVar[int] = 504
    title: ClassVar[str] = "n8n did not answer in time"
    slug: ClassVar[str] = "n8n-timeout"


@dataclass(frozen=True, slots=True)
class Workflow:
    id: str
    name: str
    active: bool


@dataclass(frozen=True, slots=True)
class Execution:
    workflow_id: str
    status: str
    started_at: datetime
    # None when its duration is unknown: still running, or stopped before it started (module
    # docstring); never earlier than `started_at`.
    stopped_at: datetime | None


@dataclass(frozen=True, slots=True)
class History:
    """What one read of the executions gave: the started executions, how many records n8n
    returned (queued ones and those before the period included), and whether the read reached
    the period's start (False: MAX_PAGES ran out first, the older part of the period is
    missing)."""

    executions: list[Execution]
    read: int
    complete: bool


def _utc(value: datetime) -> datetime:
    """n8n's times in UTC; one without an offset is UTC already (module docstring)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as error:  # 0001-01-01T00:00:00+05:00
        raise ValueError("the date is out of range") from error


def _identifier(value: object) -> object:
    # n8n before 1.0 numbered its workflows; later versions use strings. Nothing else is an id.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


N8nTime = Annotated[datetime, AfterValidator(_utc)]
N8nId = Annotated[str, BeforeValidator(_identifier)]


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False, frozen=True)


class WorkflowItem(_Item):
    id: N8nId
    name: str | None = None
    active: bool | None = None


class ExecutionItem(_Item):  # n8n's own field names
    workflowId: N8nId
    status: str | None = None
    finished: bool | None = None
    startedAt: N8nTime | None = None
    stoppedAt: N8nTime | None = None


ItemT = TypeVar("ItemT", WorkflowItem, ExecutionItem)


class Page(_Item, Generic[ItemT]):
    data: list[ItemT]
    nextCursor: str | None = None


def api_root(base_url: str) -> str:
    """The instance root as saved (`https://n8n.acme.com`); a trailing /api/v1 is accepted."""
    root = base_url.strip().rstrip("/")
    return root.removesuffix("/api/v1").rstrip("/")


class N8nClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float, allow_private: bool) -> None:
        """`allow_private`: whether n8n may be on a private, loopback or link-local address
        (development and tests); production refuses them, as it does for webhooks."""
        self.root = api_root(base_url)
        self.headers = {"X-N8N-API-KEY": api_key, "Accept": "application/json"}
        self.timeout = timeout
        self.allow_private = allow_private

    async def workflows(self) -> list[Workflow]:
        """The first MAX_PAGES pages: a workflow past them still has its executions counted,
        under its id for a name."""
        items, _ = await self._pages("/api/v1/workflows", Page[WorkflowItem], stop_before=None)
        return [Workflow(item.id, item.name or item.id, bool(item.active)) for item in items]

    async def executions(self, since: datetime) -> History:
        items, complete = await self._pages(
            "/api/v1/executions", Page[ExecutionItem], stop_before=since
        )
        started = [
            Execution(item.workflowId, _status(item), item.startedAt, _stopped(item))
            for item in items
            if item.startedAt is not None
        ]
        return History(started, len(items), complete)

    async def _pages(
        self, path: str, page_type: type[Page[ItemT]], stop_before: datetime | None
    ) -> tuple[list[ItemT], bool]:
        """The items of up to MAX_PAGES pages, and whether that was all of them (or, with
        `stop_before`, all of them since then)."""
        found: list[ItemT] = []
        cursor: str | None = None
        async with outbound_client(
            allow_private=self.allow_private, timeout=self.timeout, headers=self.headers
        ) as http:
            for _ in range(MAX_PAGES):
                query = {"limit": str(PAGE_SIZE), **({"cursor": cursor} if cursor else {})}
                page = _parse(path, page_type, await self._get(http, path, query))
                found.extend(page.data)
                cursor = page.nextCursor
                oldest = _started(page.data[-1]) if page.data else None
                if not cursor or (stop_before and oldest and oldest < stop_before):
                    return found, True
        return found, False

    async def _get(self, http: httpx.AsyncClient, path: str, query: dict[str, str]) -> object:
        try:
            async with http.stream("GET", self.root + path, params=query) as response:
                body = await _read_at_most(response, MAX_PAGE_BYTES)
        except UnsafeWebhookURL as error:  # checked at each connection: DNS can change
            raise N8nUnavailable(f"n8n at {self.root} is not called: {error}") from error
        except httpx.TimeoutException as error:
            raise N8nTimeout(
                f"n8n at {self.root} did not answer within {self.timeout:g} s."
            ) from error
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as error:
            # InvalidURL and UnicodeError (an IDNA host such as xn--zz.com) are not HTTPErrors,
            # yet they are the same answer to the user: nothing reachable at that address.
            raise N8nUnavailable(
                f"n8n at {self.root} is unreachable ({type(error).__name__})."
            ) from error
        if response.is_redirect or 300 <= response.status_code < 400:
            raise N8nUnavailable(_redirect(path, response))
        if response.status_code in (401, 403):
            raise N8nUnavailable("n8n refused the API key (401/403): check it in n8n's settings.")
        if response.status_code >= 400:
            raise N8nUnavailable(f"n8n answered {response.status_code} to {path}.")
        if body is None:
            raise N8nUnavailable(
                f"n8n answered {path} with more than {MAX_PAGE_BYTES // 1024 // 1024} MiB; "
                "a page of n8n's API is far smaller, so this is not n8n's API."
            )
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as error:  # RecursionError: absurdly nested JSON
            raise N8nUnavailable(f"n8n answered {path} with something that is not JSON.") from error


async def _read_at_most(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _redirect(path: str, response: httpx.Response) -> str:
    """A redirect is not followed (an n8n answering at another address is a wrong base URL,
    and following it would bypass the address check); it is named, with where it points."""
    location = response.headers.get("location")
    if not location:
        return f"n8n answered {path} with a redirect ({response.status_code}) and no Location."
    try:
        target = str(response.url.join(location))
    except (httpx.InvalidURL, ValueError):
        target = location
    if len(target) > 200:
        target = target[:200] + "..."
    return (
        f"n8n answered {path} with a redirect ({response.status_code}) to {target}; use the "
        "instance's root URL (as n8n's editor is served, scheme included)."
    )


def _parse(path: str, page_type: type[Page[ItemT]], body: object) -> Page[ItemT]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise N8nUnavailable(f"n8n answered {path} without the public API's 'data' list.")
    try:
        return page_type.model_validate(body)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise N8nUnavailable(
            f"n8n answered {path} with a malformed page: {where}: {first['msg']}"
            f"{_more(error.error_count())}."
        ) from error


def _more(count: int) -> str:
    return f" (and {count - 1} more problems)" if count > 1 else ""


def _started(item: WorkflowItem | ExecutionItem) -> datetime | None:
    return item.startedAt if isinstance(item, ExecutionItem) else None


def _stopped(item: ExecutionItem) -> datetime | None:
    """Its stop time, or None when that gives no duration (module docstring)."""
    started, stopped = item.startedAt, item.stoppedAt
    if started is None or stopped is None or stopped < started:
        return None
    return stopped


def _status(item: ExecutionItem) -> str:
    return item.status or ("success" if item.finished else "unknown")
