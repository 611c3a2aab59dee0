"""The part of n8n's public API that automation metrics need (`X-N8N-API-KEY`).

`GET /api/v1/workflows` and `GET /api/v1/executions` answer `{"data": [...], "nextCursor": ...}`;
executions come newest first, so paging stops at the first one older than the period. Every way
n8n can fail (down, slow, refusing the key, answering garbage) becomes a 502 or 504 problem that
names the cause; a practice's broken n8n is never our 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import httpx

from clinicflow.core.errors import ClinicFlowError

PAGE_SIZE = 250  # n8n's largest page
MAX_PAGES = 40  # 10,000 executions a period at most: a huge history cannot hang a request


class N8nUnavailable(ClinicFlowError):
    status_code: ClassVar[int] = 502
    title: ClassVar[str] = "n8n unavailable"
    slug: ClassVar[str] = "n8n-unavailable"


class N8nTimeout(ClinicFlowError):
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
    stopped_at: datetime | None


def api_root(base_url: str) -> str:
    """The instance root as saved (`https://n8n.acme.com`); a trailing /api/v1 is accepted."""
    root = base_url.strip().rstrip("/")
    return root.removesuffix("/api/v1").rstrip("/")


class N8nClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float) -> None:
        self.root = api_root(base_url)
        self.headers = {"X-N8N-API-KEY": api_key, "Accept": "application/json"}
        self.timeout = timeout

    async def workflows(self) -> list[Workflow]:
        pages = await self._pages("/api/v1/workflows", {}, stop_before=None)
        return [
            Workflow(str(item["id"]), str(item.get("name") or item["id"]), bool(item.get("active")))
            for item in pages
        ]

    async def executions(self, since: datetime) -> list[Execution]:
        items = await self._pages("/api/v1/executions", {}, stop_before=since)
        return [execution for item in items if (execution := _execution(item)) is not None]

    async def _pages(
        self, path: str, params: dict[str, str], stop_before: datetime | None
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as http:
            for _ in range(MAX_PAGES):
                query = {
                    **params,
                    "limit": str(PAGE_SIZE),
                    **({"cursor": cursor} if cursor else {}),
                }
                page = await self._get(http, path, query)
                found.extend(page["data"])
                cursor = page.get("nextCursor")
                oldest = _started(page["data"][-1]) if page["data"] else None
                if not cursor or (stop_before and oldest and oldest < stop_before):
                    break
        return found

    async def _get(
        self, http: httpx.AsyncClient, path: str, query: dict[str, str]
    ) -> dict[str, Any]:
        try:
            response = await http.get(self.root + path, params=query)
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
        if response.status_code in (401, 403):
            raise N8nUnavailable("n8n refused the API key (401/403): check it in n8n's settings.")
        if response.status_code >= 400:
            raise N8nUnavailable(f"n8n answered {response.status_code} to {path}.")
        try:
            body = response.json()
        except ValueError as error:
            raise N8nUnavailable(f"n8n answered {path} with something that is not JSON.") from error
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise N8nUnavailable(f"n8n answered {path} without the public API's 'data' list.")
        return body


def _started(item: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(item["startedAt"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


def _execution(item: dict[str, Any]) -> Execution | None:
    started = _started(item)
    if started is None or "workflowId" not in item:
        return None
    stopped_text = item.get("stoppedAt")
    stopped = (
        datetime.fromisoformat(str(stopped_text).replace("Z", "+00:00")) if stopped_text else None
    )
    status = str(item.get("status") or ("success" if item.get("finished") else "unknown"))
    return Execution(str(item["workflowId"]), status, started, stopped)
