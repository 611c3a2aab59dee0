"""The principal cache's vetting in flight: callers with the same credential wait for it once,
then vet on their own, in parallel, when it left nothing to find (a refusal, a failure)."""

from __future__ import annotations

import asyncio
import uuid

from clinicflow.auth.principal_cache import Basis, CacheKey, Changes, PrincipalCache

KEY: CacheKey = ("token", "a-token", None)


async def test_a_caller_waits_for_the_vetting_in_flight_and_finds_its_entry() -> None:
    cache: PrincipalCache[str] = PrincipalCache()
    release = asyncio.Event()

    async def first() -> None:
        with cache.vetting(KEY):
            await release.wait()
            cache.put(KEY, "vetted", Basis(uuid.uuid4()), seconds=5, generation=cache.generation)

    vetting = asyncio.create_task(first())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(cache.wait_for_vetting(KEY))
    await asyncio.sleep(0)
    assert not waiting.done()
    release.set()
    assert await waiting is True
    assert cache.get(KEY) == "vetted"
    await vetting
    assert await cache.wait_for_vetting(KEY) is False  # nothing in flight any more


async def test_after_a_vetting_that_left_nothing_the_waiters_vet_side_by_side() -> None:
    """A refused or failed vetting is not shared; the waiters must not then queue one
    behind the other (with a database timing out, the k-th would wait k timeouts)."""
    cache: PrincipalCache[str] = PrincipalCache()
    release = asyncio.Event()
    inside: list[str] = []
    stay = asyncio.Event()

    async def refused() -> None:
        with cache.vetting(KEY):
            await release.wait()  # then leaves without an entry

    async def waiter(name: str) -> None:
        assert await cache.wait_for_vetting(KEY)
        assert cache.get(KEY) is None
        with cache.vetting(KEY):
            inside.append(name)
            await stay.wait()

    first = asyncio.create_task(refused())
    await asyncio.sleep(0)
    others = [asyncio.create_task(waiter(name)) for name in ("b", "c", "d")]
    await asyncio.sleep(0)
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert sorted(inside) == ["b", "c", "d"]  # all vetting at once, none queued
    stay.set()
    await asyncio.gather(first, *others)
    assert await cache.wait_for_vetting(KEY) is False


async def test_a_cancelled_vetting_lets_its_waiters_go() -> None:
    cache: PrincipalCache[str] = PrincipalCache()

    async def hangs() -> None:
        with cache.vetting(KEY):
            await asyncio.Event().wait()

    vetting = asyncio.create_task(hangs())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(cache.wait_for_vetting(KEY))
    await asyncio.sleep(0)
    vetting.cancel()
    assert await waiting is True
    assert await cache.wait_for_vetting(KEY) is False


def test_what_was_vetted_before_a_change_in_this_process_is_not_remembered() -> None:
    """A vetting reads the session row, a logout in the same process commits (forget), then
    the vetting stores what it read: the revoked caller would be served from the cache."""
    cache: PrincipalCache[str] = PrincipalCache()
    user = uuid.uuid4()
    read_at = cache.generation
    cache.forget(Changes(users={user}))
    cache.put(KEY, "stale", Basis(None, user), seconds=5, generation=read_at)
    assert cache.get(KEY) is None
    cache.put(KEY, "fresh", Basis(None, user), seconds=5, generation=cache.generation)
    assert cache.get(KEY) == "fresh"
