"""Each process remembers a vetted caller for a few seconds (auth/principal_cache.py); callers
that arrive together with a credential it does not remember yet are vetted once, not once each
(a burst of session and membership queries every time an entry expired under load)."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.factories import make_api_key, make_member
from tests.statements import statements_sent

TOGETHER = 8


async def _together(
    client: httpx.AsyncClient, headers: dict[str, str], path: str = "/api/v1/patients"
) -> list[int]:
    answers = await asyncio.gather(*(client.get(path, headers=headers) for _ in range(TOGETHER)))
    return [answer.status_code for answer in answers]


async def test_requests_arriving_together_with_a_new_token_vet_it_once(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    with statements_sent(db) as sent:
        statuses = await _together(client, owner.headers)
    assert statuses == [200] * TOGETHER
    assert sum("FROM auth_sessions" in statement for statement in sent) == 1


async def test_requests_arriving_together_with_a_new_api_key_vet_it_once(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    key = {"X-API-Key": await make_api_key(db, owner.tenant_id, ["patients:read"])}
    # A key's first use records last_used_at; it is remembered from its next vetting on.
    assert (await client.get("/api/v1/patients", headers=key)).status_code == 200
    with statements_sent(db) as sent:
        statuses = await _together(client, key)
    assert statuses == [200] * TOGETHER
    assert sum("FROM api_keys" in statement for statement in sent) == 1


async def test_a_refused_credential_is_refused_to_every_request_that_waited_for_it(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    logout = await client.post("/api/v1/auth/logout", headers=owner.headers)
    assert logout.status_code in (200, 204)
    with statements_sent(db) as sent:
        statuses = await _together(client, owner.headers)
    assert statuses == [401] * TOGETHER
    # Nothing is remembered of a refusal: each request vetted the token and was refused.
    assert sum("FROM auth_sessions" in statement for statement in sent) == TOGETHER


async def test_an_api_key_sent_as_a_bearer_token_is_refused_even_when_remembered(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """REST takes keys in X-API-Key only: a remembered key must not make the bearer form work
    (it was refused cold and accepted warm)."""
    owner = await make_member(db, role="owner")
    key = await make_api_key(db, owner.tenant_id, ["patients:read"])
    for _ in range(2):  # the first use records last_used_at; the second is remembered
        assert (await client.get("/api/v1/patients", headers={"X-API-Key": key})).status_code == 200
    for forged in (key, f"X-API-Key {key}", f"key {key}"):
        as_bearer = await client.get(
            "/api/v1/patients", headers={"Authorization": f"Bearer {forged}"}
        )
        assert as_bearer.status_code == 401, forged
