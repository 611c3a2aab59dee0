"""Automation metrics from a practice's n8n, against a fake n8n that speaks the public API's
shape, served over real HTTP by the test (tests/fake_n8n.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from clinicflow.core.crypto import KeyRing, generate_key_entry
from clinicflow.core.pagination import encode_cursor
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import tenant_context
from clinicflow.integrations import n8n_client
from clinicflow.integrations.models import N8nConnection
from clinicflow.integrations.service import _aad as n8n_aad
from tests import services
from tests.factories import Member, make_member, make_platform_admin, make_tenant
from tests.fake_n8n import API_KEY, EXECUTIONS, NOW, FakeN8n, metrics_client, serve_fake_n8n
from tests.fake_n8n import connect as _connect
from tests.rebinding import PUBLIC_ADDRESS, RebindingResolver


async def _every_practice(
    client: httpx.AsyncClient, admin: Member, after: uuid.UUID, **params: object
) -> httpx.Response:
    """The platform's view from the practices made after `after`: the test database holds
    every other test's practices too, on the pages before."""
    cursor = encode_cursor([str(after)])
    return await client.get(
        "/api/v1/metrics/tenants", params={"cursor": cursor, **params}, headers=admin.headers
    )


@pytest.fixture
async def n8n() -> AsyncIterator[tuple[FakeN8n, str]]:
    async with serve_fake_n8n() as served:
        yield served


def _expected(workflow_id: str, name: str, **figures: Any) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "name": name, **figures}


async def test_figures_equal_hand_computed_ones_and_come_from_the_cache(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str], admin_engine: AsyncEngine
) -> None:
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    viewer = await make_member(db, role="viewer", tenant_id=owner.tenant_id)
    async with metrics_client(settings) as client:
        connected = await _connect(client, owner, base_url)
        assert connected.status_code == 200, connected.text
        assert connected.json()["base_url"] == base_url  # /api/v1 is accepted and trimmed
        workflows = await client.get("/api/v1/metrics/me/workflows", headers=viewer.headers)
        totals = await client.get("/api/v1/metrics/me", headers=viewer.headers)
        asked = fake.requests
        again = await client.get("/api/v1/metrics/me", headers=viewer.headers)
        fresh = await client.get("/api/v1/metrics/me?refresh=true", headers=viewer.headers)
        assert fresh.json()["cached"] is False
    by_id = {item["workflow_id"]: item for item in workflows.json()["items"]}
    w1, w2 = by_id["w1"], by_id["w2"]
    assert (w1["executions"], w1["success"], w1["error"], w1["other"]) == (3, 2, 1, 0)
    assert (w1["success_rate"], w1["error_rate"]) == (0.6667, 0.3333)
    assert (w1["average_duration_ms"], w1["p95_duration_ms"]) == (2000.0, 3000.0)
    assert (w2["executions"], w2["success"], w2["error"], w2["other"]) == (3, 1, 0, 2)
    assert (w2["average_duration_ms"], w2["p95_duration_ms"]) == (300.0, 500.0)
    assert w1["last_run_at"] == EXECUTIONS[0]["startedAt"]
    total = totals.json()["totals"]
    assert (total["executions"], total["success"], total["error"], total["other"]) == (6, 3, 1, 2)
    assert (total["success_rate"], total["error_rate"]) == (0.5, 0.1667)
    assert (total["average_duration_ms"], total["p95_duration_ms"]) == (1320.0, 3000.0)
    assert again.json()["cached"] is True
    assert again.json()["totals"] == total
    assert fake.requests == asked + 4  # only the refresh asked: workflows, 3 execution pages
    async with admin_engine.connect() as connection:
        raw = (await connection.execute(text("SELECT api_key FROM n8n_connections"))).scalars()
        assert all(API_KEY.encode() not in bytes(blob) for blob in raw)


async def test_workflow_figures_come_a_page_at_a_time_in_workflow_id_order(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    _, base_url = n8n
    owner = await make_member(db, role="owner")
    path = "/api/v1/metrics/me/workflows"
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        whole = (await client.get(path, headers=owner.headers)).json()
        pages, cursor = [], None
        while True:
            query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
            page = (await client.get(path, params=query, headers=owner.headers)).json()
            pages.append([item["workflow_id"] for item in page["items"]])
            if not (cursor := page["next_cursor"]):
                break
        forged = await client.get(path, params={"cursor": "bm9wZQ"}, headers=owner.headers)
    ids = [item["workflow_id"] for item in whole["items"]]
    assert ids == sorted(ids)
    assert len(ids) >= 2
    assert whole["next_cursor"] is None
    assert pages == [[workflow_id] for workflow_id in ids]
    assert forged.status_code == 404, forged.text


async def test_the_cache_is_shared_through_redis(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    shared = {"redis_url": services.redis_url()}
    async with metrics_client(settings, **shared) as first:
        assert (await _connect(first, owner, base_url)).status_code == 200
        assert (await first.get("/api/v1/metrics/me", headers=owner.headers)).json()[
            "cached"
        ] is False
    asked = fake.requests
    async with metrics_client(settings, **shared) as second:  # another worker
        answer = await second.get("/api/v1/metrics/me", headers=owner.headers)
    assert answer.json()["cached"] is True
    assert fake.requests == asked


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [("401", 502, "refused the API key"), ("500", 502, "answered 500"),
     ("garbage", 502, "not JSON"), ("hang", 504, "did not answer"),
     ("huge", 502, "with more than 8 MiB"),
     ("redirect", 502, "with a redirect (302) to http://127.0.0.1:{port}/signin?redirect=%2Fapi; "
                       "use the instance's root URL")],
)  # fmt: skip
async def test_a_broken_n8n_is_a_problem_that_names_the_cause(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str], mode: str, status: int, words: str
) -> None:
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        fake.mode = mode
        answer = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
        refused = await _connect(client, owner, base_url)
    words = words.format(port=base_url.rsplit(":", 1)[1])
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"]
    assert refused.status_code == status  # checked before saving, with the same cause named
    assert words in refused.json()["detail"]


async def test_practices_see_only_their_own_and_the_platform_admin_sees_figures_only(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    _, base_url = n8n
    start = await make_tenant(db)
    owner = await make_member(db, role="owner")
    stranger = await make_member(db, role="owner")
    admin = await make_platform_admin(db)
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        theirs = await client.get("/api/v1/metrics/me", headers=stranger.headers)
        config = await client.get("/api/v1/integrations/n8n", headers=stranger.headers)
        every = await _every_practice(client, admin, start)
        one = await client.get(
            f"/api/v1/metrics/tenants/{owner.tenant_id}/workflows", headers=admin.headers
        )
        clinical = await client.get(
            "/api/v1/patients", headers={**admin.headers, "X-Tenant-ID": str(owner.tenant_id)}
        )
    assert theirs.status_code == 404
    assert config.json() == {"configured": False, "base_url": None, "updated_at": None}
    assert [item["tenant_id"] for item in every.json()["items"]] == [str(owner.tenant_id)]
    assert {item["workflow_id"] for item in one.json()["items"]} == {"w1", "w2"}
    assert clinical.status_code == 403


@pytest.mark.parametrize(
    "base_url", ["https://xn--zz.com", "http://[::1", "https://22tu6lf5.cgkomca.test"]
)
async def test_an_address_no_client_can_use_is_a_502_not_a_500(
    db: FastAPI, settings: Settings, base_url: str
) -> None:
    """Found by schemathesis: an IDNA host httpx cannot encode raised past the client."""
    owner = await make_member(db, role="owner")
    async with metrics_client(settings) as client:
        answer = await _connect(client, owner, base_url)
        stored = await client.get("/api/v1/integrations/n8n", headers=owner.headers)
    assert answer.status_code in (422, 502), answer.text
    assert stored.json()["configured"] is False


async def test_a_key_that_cannot_be_an_http_header_is_refused_not_a_500(
    db: FastAPI, settings: Settings
) -> None:
    """Found by schemathesis: a non-ASCII key crashed while building the request headers."""
    owner = await make_member(db, role="owner")
    async with metrics_client(settings) as client:
        answer = await client.put(
            "/api/v1/integrations/n8n",
            json={"base_url": "https://n8n.example.com", "api_key": "chave-çã-secreta"},
            headers=owner.headers,
        )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "api_key"


@pytest.mark.parametrize(
    ("body", "words"),
    [({"data": ["a", "b"], "nextCursor": None}, "data.0: Input should be a valid dictionary"),
     ({"data": [{"name": "x"}]}, "data.0.id: Field required"),
     ({"data": [{"id": "w1"}], "nextCursor": ["1"]}, "nextCursor"),
     ({"data": [{"id": None, "name": 7}, {"id": {}}]}, "and 2 more problems")],
)  # fmt: skip
async def test_workflows_of_the_wrong_shape_are_a_502_naming_the_field_and_nothing_is_saved(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str], body: Any, words: str
) -> None:
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    fake.workflows_body = body
    async with metrics_client(settings) as client:
        answer = await _connect(client, owner, base_url)
        stored = await client.get("/api/v1/integrations/n8n", headers=owner.headers)
    assert answer.status_code == 502, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "/api/v1/workflows with a malformed page" in answer.json()["detail"]
    assert words in answer.json()["detail"]
    assert stored.json()["configured"] is False


def _with(run: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**run, **changes}


@pytest.mark.parametrize(
    ("executions", "words"),
    [([_with(EXECUTIONS[0], stoppedAt="garbage")], "data.0.stoppedAt: Input should be a valid"),
     ([EXECUTIONS[0], _with(EXECUTIONS[1], startedAt=12.5e99)], "data.1.startedAt"),
     ([_with(EXECUTIONS[0], workflowId=None)], "data.0.workflowId"),
     ([_with(EXECUTIONS[0], startedAt="0001-01-01T00:00:00+05:00")], "out of range"),
     ("not a list", "without the public API's 'data' list")],
)  # fmt: skip
async def test_executions_of_the_wrong_shape_are_a_502_naming_the_field(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str], executions: Any, words: str
) -> None:
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        fake.executions_body = {"data": executions, "nextCursor": None}
        answer = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
        per_workflow = await client.get(
            "/api/v1/metrics/me/workflows?refresh=true", headers=owner.headers
        )
    assert (answer.status_code, per_workflow.status_code) == (502, 502), answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"]
    assert "/api/v1/executions" in answer.json()["detail"]


async def test_times_without_an_offset_are_read_as_utc(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    """n8n stores and serves UTC; a naive time (an old version, a rewriting proxy) is UTC too."""
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    naive = [
        _with(run, startedAt=run["startedAt"].removesuffix("Z"),
              stoppedAt=run["stoppedAt"] and run["stoppedAt"].removesuffix("Z"))
        for run in EXECUTIONS
    ]  # fmt: skip
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        aware = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
        fake.executions_body = {"data": naive, "nextCursor": None}
        answer = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["totals"] == aware.json()["totals"]
    assert answer.json()["totals"]["executions"] == 6
    assert answer.json()["totals"]["last_run_at"] == EXECUTIONS[0]["startedAt"]


async def test_executions_not_started_yet_are_not_counted(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    queued = _with(EXECUTIONS[0], startedAt=None, stoppedAt=None, status="new")
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        fake.executions_body = {"data": [queued, *EXECUTIONS], "nextCursor": None}
        answer = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["totals"]["executions"] == 6


async def test_an_execution_that_stopped_before_it_started_has_no_duration(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    """Clocks of n8n's processes that disagree: the run is counted, its duration is unknown
    (as a run still going), and no average or p95 is ever negative."""
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    first = EXECUTIONS[0]  # w1, success, 1000 ms
    # The same wall-clock time at +00:05: five minutes before it started.
    backwards = _with(first, stoppedAt=first["startedAt"].replace("Z", "+00:05"))
    assert backwards["stoppedAt"] != first["startedAt"]
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        fake.executions_body = {"data": [backwards, *EXECUTIONS[1:]], "nextCursor": None}
        totals = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
        workflows = await client.get("/api/v1/metrics/me/workflows", headers=owner.headers)
    assert totals.status_code == 200, totals.text
    total = totals.json()["totals"]
    assert (total["executions"], total["success"], total["error"], total["other"]) == (6, 3, 1, 2)
    # 2000, 3000 (w1) and 500, 100 (w2): the backwards run is not among the durations.
    assert (total["average_duration_ms"], total["p95_duration_ms"]) == (1400.0, 3000.0)
    w1 = {item["workflow_id"]: item for item in workflows.json()["items"]}["w1"]
    assert (w1["executions"], w1["success"]) == (3, 2)
    assert (w1["average_duration_ms"], w1["p95_duration_ms"]) == (2500.0, 3000.0)
    assert w1["last_run_at"] == first["startedAt"]


async def test_one_practice_answering_garbage_is_listed_as_unavailable_for_the_platform_admin(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    _, base_url = n8n
    start = await make_tenant(db)
    owner = await make_member(db, role="owner")
    broken = await make_member(db, role="owner")
    admin = await make_platform_admin(db)
    async with serve_fake_n8n() as (other, other_url), metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        assert (await _connect(client, broken, other_url)).status_code == 200
        other.executions_body = {"data": [_with(EXECUTIONS[0], stoppedAt="garbage")]}
        every = await _every_practice(client, admin, start, refresh="true")
        # A page of one practice: the next one is behind the cursor.
        first = await _every_practice(client, admin, start, limit=1)
        second = await client.get(
            "/api/v1/metrics/tenants",
            params={"cursor": first.json()["next_cursor"], "limit": 1},
            headers=admin.headers,
        )
        other.executions_body, other.mode = None, "hang"
        slow = await _every_practice(client, admin, start, refresh="true")
    assert every.status_code == 200, every.text
    assert [item["tenant_id"] for item in every.json()["items"]] == [str(owner.tenant_id)]
    assert "data.0.stoppedAt" in every.json()["unavailable"][str(broken.tenant_id)]
    assert [item["tenant_id"] for item in first.json()["items"]] == [str(owner.tenant_id)]
    assert set(second.json()["unavailable"]) == {str(broken.tenant_id)}
    assert slow.status_code == 200, slow.text
    assert "did not answer" in slow.json()["unavailable"][str(broken.tenant_id)]


async def test_a_practice_whose_n8n_key_cannot_be_opened_is_unavailable_not_a_503_for_all(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    """The platform's view: one practice's n8n API key sealed with a key this server lacks (a
    server still on the old ENCRYPTION_KEYS), another's altered at rest: both are listed in
    `unavailable` with the reason, and the practice whose key opens is answered."""
    _, base_url = n8n
    start = await make_tenant(db)
    readable = await make_member(db, role="owner")
    lost = await make_member(db, role="owner")
    tampered = await make_member(db, role="owner")
    admin = await make_platform_admin(db)
    elsewhere = KeyRing.from_setting(
        f"{generate_key_entry('k-elsewhere')},{settings.encryption_keys.get_secret_value()}"
    )
    async with metrics_client(settings) as client:
        for owner in (readable, lost, tampered):
            assert (await _connect(client, owner, base_url)).status_code == 200
        async with db.state.database.sessionmaker() as session, session.begin():
            for owner in (lost, tampered):
                async with tenant_context(session, owner.tenant_id):
                    connection = await session.scalar(select(N8nConnection))
                    assert connection is not None
                    if owner is lost:  # sealed by a server that has a key this one lacks
                        sealed = elsewhere.encrypt(API_KEY, aad=n8n_aad(connection))
                        connection.api_key_key_id, connection.api_key = sealed.key_id, sealed.blob
                    else:
                        blob = connection.api_key
                        connection.api_key = blob[:-1] + bytes([blob[-1] ^ 1])
        every = await _every_practice(client, admin, start, refresh="true")
    assert every.status_code == 200, every.text
    assert [item["tenant_id"] for item in every.json()["items"]] == [str(readable.tenant_id)]
    unavailable = every.json()["unavailable"]
    assert set(unavailable) == {str(lost.tenant_id), str(tampered.tenant_id)}
    assert "'k-elsewhere'" in unavailable[str(lost.tenant_id)]
    assert "ENCRYPTION_KEYS" in unavailable[str(lost.tenant_id)]
    assert "cannot be decrypted" in unavailable[str(tampered.tenant_id)]
    assert API_KEY not in every.text


@pytest.mark.parametrize("cache", ["memory", "redis"])
async def test_figures_of_a_replaced_or_removed_connection_never_answer_for_the_new_one(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str], cache: str
) -> None:
    _, first_url = n8n
    owner = await make_member(db, role="owner")
    shared: dict[str, object] = {"redis_url": services.redis_url()} if cache == "redis" else {}
    # A long lifetime: only the change of connection may stop the old figures from answering.
    shared["n8n_cache_seconds"] = 86400
    async with (
        serve_fake_n8n() as (second, second_url),
        metrics_client(settings, **shared) as client,
    ):
        second.executions_body = {"data": EXECUTIONS[:2], "nextCursor": None}
        assert (await _connect(client, owner, first_url)).status_code == 200
        first = await client.get("/api/v1/metrics/me", headers=owner.headers)
        assert (await _connect(client, owner, second_url)).status_code == 200
        replaced = await client.get("/api/v1/metrics/me", headers=owner.headers)
        replaced_per_workflow = await client.get(
            "/api/v1/metrics/me/workflows", headers=owner.headers
        )
        assert (await client.delete("/api/v1/integrations/n8n", headers=owner.headers)).is_success
        removed = await client.get("/api/v1/metrics/me", headers=owner.headers)
        assert (await _connect(client, owner, first_url)).status_code == 200
        reconnected = await client.get("/api/v1/metrics/me", headers=owner.headers)
    assert (first.json()["totals"]["executions"], first.json()["cached"]) == (6, False)
    assert (replaced.json()["totals"]["executions"], replaced.json()["cached"]) == (2, False)
    assert replaced_per_workflow.json()["cached"] is True  # the new connection's own entry
    assert sum(item["executions"] for item in replaced_per_workflow.json()["items"]) == 2
    assert removed.status_code == 404
    assert (reconnected.json()["totals"]["executions"], reconnected.json()["cached"]) == (6, False)


async def test_private_addresses_are_refused_in_production_when_saved_and_when_read(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    """SSRF: the webhooks' rule. (Development and test allow them, so the fake n8n works.)"""
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    port = base_url.rsplit(":", 1)[1]
    production = {"environment": "production"}
    async with metrics_client(settings, **production) as client:
        for url in (base_url, f"http://localhost:{port}", f"http://[::1]:{port}",
                    f"http://0x7f000001:{port}", "http://10.0.0.8", "http://169.254.169.254",
                    "http://[::ffff:169.254.169.254]"):  # fmt: skip
            refused = await _connect(client, owner, url)
            assert refused.status_code == 422, (url, refused.text)
            assert refused.json()["errors"][0]["field"] == "base_url"
            assert "private or internal" in refused.json()["detail"]
        stored = await client.get("/api/v1/integrations/n8n", headers=owner.headers)
    assert stored.json()["configured"] is False
    assert fake.requests == 0

    # Saved while allowed, then read by a production server: n8n is not called.
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
    asked = fake.requests
    async with metrics_client(settings, **production) as client:
        answer = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
    assert answer.status_code == 502, answer.text
    assert "private or internal" in answer.json()["detail"]
    assert fake.requests == asked


async def test_an_n8n_host_that_rebinds_to_a_private_address_is_not_called(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address to the check of the URL being saved,
    then the server's own (where the fake n8n listens) when the save tries the connection.
    The call connects only to the address it has just checked: n8n is not called, and
    nothing is saved."""
    fake, base_url = n8n
    port = base_url.rsplit(":", 1)[1]
    rebinding = RebindingResolver("n8n.rebinding.test", "127.0.0.1")
    rebinding.install(monkeypatch)
    owner = await make_member(db, role="owner")
    async with metrics_client(settings, environment="production") as client:
        refused = await _connect(client, owner, f"http://n8n.rebinding.test:{port}")
        stored = await client.get("/api/v1/integrations/n8n", headers=owner.headers)
    assert rebinding.answers == [PUBLIC_ADDRESS, "127.0.0.1"]  # checked, then connected
    assert refused.status_code == 502, refused.text
    assert "private or internal" in refused.json()["detail"]
    assert fake.requests == 0
    assert stored.json()["configured"] is False


@pytest.mark.parametrize("userinfo", ["admin:s3cretpw@", "admin@", ":s3cretpw@"])
async def test_a_base_url_with_credentials_is_refused_and_nothing_keeps_them(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str], admin_engine: AsyncEngine,
    userinfo: str,
) -> None:  # fmt: skip
    fake, base_url = n8n
    owner = await make_member(db, role="owner")
    with_credentials = base_url.replace("://", f"://{userinfo}")
    async with metrics_client(settings) as client:
        refused = await _connect(client, owner, with_credentials)
        stored = await client.get("/api/v1/integrations/n8n", headers=owner.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "base_url"
    assert "s3cretpw" not in refused.text
    assert stored.json()["configured"] is False
    assert fake.requests == 0
    async with admin_engine.connect() as connection:
        audited = (
            await connection.execute(
                text("SELECT count(*) FROM audit_events WHERE tenant_id = :t AND action LIKE :a"),
                {"t": owner.tenant_id, "a": "integration.%"},
            )
        ).scalar_one()
    assert audited == 0


async def test_an_answer_cut_at_the_page_cap_says_so(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake answers pages of 3 (hours ago: 1 2 3 | 4 5 6 | 960); the cap is made 2 pages."""
    _, base_url = n8n
    start = await make_tenant(db)
    owner = await make_member(db, role="owner")
    admin = await make_platform_admin(db)
    monkeypatch.setattr(n8n_client, "MAX_PAGES", 2)
    reached = (NOW - timedelta(hours=3, minutes=30)).isoformat().replace("+00:00", "Z")
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        cut = await client.get("/api/v1/metrics/me", headers=owner.headers)
        cut_again = await client.get("/api/v1/metrics/me/workflows", headers=owner.headers)
        every = await _every_practice(client, admin, start)
        whole = await client.get(
            "/api/v1/metrics/me/workflows", params={"from": reached}, headers=owner.headers
        )
        monkeypatch.setattr(n8n_client, "MAX_PAGES", 40)
        uncapped = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
    assert cut.status_code == 200, cut.text
    assert (cut.json()["truncated"], cut.json()["executions_read"]) == (True, 6)
    assert cut.json()["totals"]["executions"] == 6
    assert (cut_again.json()["cached"], cut_again.json()["truncated"]) == (True, True)
    assert cut_again.json()["executions_read"] == 6
    [item] = every.json()["items"]
    assert (item["truncated"], item["executions_read"]) == (True, 6)
    # The period's start was reached within the cap: complete.
    assert (whole.json()["truncated"], whole.json()["executions_read"]) == (False, 6)
    assert (uncapped.json()["truncated"], uncapped.json()["executions_read"]) == (False, 7)


async def test_a_slow_n8n_holds_no_database_connection(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    """While n8n takes its time, the request that asked it holds no pooled connection: with a
    pool of one, another practice's request is served meanwhile (else 503 after 1 s)."""
    fake, base_url = n8n
    start = await make_tenant(db)
    owner = await make_member(db, role="owner")
    other = await make_member(db, role="owner")
    admin = await make_platform_admin(db)
    one = {"database_pool_size": 1, "database_pool_timeout_seconds": 1, "n8n_timeout_seconds": 30}
    # Each caller verified by the database, as after the principal cache's few seconds.
    async with metrics_client(settings, **one, auth_cache_seconds=0) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        slow_calls = {
            "PUT /integrations/n8n": lambda: _connect(client, owner, base_url),
            "GET /metrics/me": lambda: client.get(
                "/api/v1/metrics/me?refresh=true", headers=owner.headers
            ),
            "GET /metrics/tenants": lambda: _every_practice(client, admin, start, refresh="true"),
        }
        for name, call in slow_calls.items():
            fake.gate, fake.waiting = asyncio.Event(), asyncio.Event()
            slow = asyncio.create_task(call())
            await asyncio.wait_for(fake.waiting.wait(), timeout=5)
            meanwhile = await client.post(
                "/api/v1/patients", json={"full_name": f"During {name}"}, headers=other.headers
            )
            fake.gate.set()
            answered = await slow
            assert meanwhile.status_code == 201, (name, meanwhile.text)
            assert answered.status_code == 200, (name, answered.text)
            if name == "GET /metrics/tenants":
                assert [item["tenant_id"] for item in answered.json()["items"]] == [
                    str(owner.tenant_id)
                ]


async def test_an_n8n_key_altered_at_rest_is_a_503_for_its_practice_not_a_500(
    db: FastAPI, settings: Settings, n8n: tuple[FakeN8n, str]
) -> None:
    _, base_url = n8n
    owner = await make_member(db, role="owner")
    async with metrics_client(settings) as client:
        assert (await _connect(client, owner, base_url)).status_code == 200
        async with (
            db.state.database.sessionmaker() as session,
            session.begin(),
            tenant_context(session, owner.tenant_id),
        ):
            connection = await session.scalar(select(N8nConnection))
            assert connection is not None
            blob = connection.api_key
            connection.api_key = blob[:-1] + bytes([blob[-1] ^ 1])
        answer = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
        again = await _connect(client, owner, base_url)  # connecting again mends it
        mended = await client.get("/api/v1/metrics/me?refresh=true", headers=owner.headers)
    assert answer.status_code == 503, answer.text
    assert "connect it again" in answer.json()["detail"]
    assert API_KEY not in answer.text
    assert again.status_code == 200
    assert mended.status_code == 200
