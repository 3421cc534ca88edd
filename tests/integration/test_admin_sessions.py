"""The dashboard's sessions and sign-in throttle against the real Redis
(api/admin/sessions.py, api/rate_limit.py; docs/adr/0033): what Redis
holds, its expiry, and a throttle shared by every API process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from api.admin.sessions import RedisSessionStore, SessionPolicy
from api.rate_limit import RedisRateLimiter
from ocpi_hub.bootstrap import redis_client
from tests.services import Namespace


@pytest.fixture
async def redis(namespace: Namespace) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(namespace.settings)
    try:
        yield client
    finally:
        await client.aclose()


def _prefix(namespace: Namespace) -> str:
    return f"{namespace.settings.topic_prefix}{uuid.uuid4().hex[:8]}:"


async def test_redis_holds_a_session_under_the_hash_of_its_id_with_its_idle_ttl(
    redis: aioredis.Redis, namespace: Namespace
) -> None:
    store = RedisSessionStore(redis, _prefix(namespace), SessionPolicy(idle_s=120, absolute_s=3600))
    session_id, session = await store.create("ada")
    assert session.login == "ada" and session.created_at == session.last_seen
    key = store.key(session_id)
    assert key.endswith(hashlib.sha256(session_id.encode()).hexdigest())
    raw = await redis.get(key)
    assert raw is not None and session_id.encode() not in raw  # the id is nowhere in Redis
    assert json.loads(raw)["login"] == "ada"
    assert 115 <= await redis.ttl(key) <= 120
    assert await store.get(session_id) == await store.peek(session_id)
    assert (await store.get("not-a-session")) is None
    await store.delete(session_id)
    assert await redis.exists(key) == 0
    assert await store.get(session_id) is None


async def test_redis_ends_an_idle_session_and_activity_keeps_it(
    redis: aioredis.Redis, namespace: Namespace
) -> None:
    store = RedisSessionStore(redis, _prefix(namespace), SessionPolicy(idle_s=2, absolute_s=3600))
    kept, _ = await store.create("ada")
    idle, _ = await store.create("ada")
    for _ in range(3):
        await asyncio.sleep(1.0)
        assert await store.get(kept) is not None
    assert await store.get(idle) is None  # 3 s without a request
    assert await redis.exists(store.key(idle)) == 0


async def test_the_absolute_limit_holds_whatever_the_ttl(
    redis: aioredis.Redis, namespace: Namespace
) -> None:
    clock = [time.time()]
    store = RedisSessionStore(
        redis, _prefix(namespace), SessionPolicy(idle_s=600, absolute_s=900), lambda: clock[0]
    )
    session_id, _ = await store.create("ada")
    assert await redis.ttl(store.key(session_id)) > 590
    clock[0] += 500
    assert await store.get(session_id) is not None
    clock[0] += 399  # 899 s after sign-in, 399 s idle
    assert await store.get(session_id) is not None
    assert await redis.ttl(store.key(session_id)) <= 1  # never past the absolute end
    clock[0] += 1
    assert await store.get(session_id) is None
    assert await redis.exists(store.key(session_id)) == 0


async def test_logout_between_a_read_and_its_refresh_is_not_undone(
    redis: aioredis.Redis, namespace: Namespace
) -> None:
    store = RedisSessionStore(redis, _prefix(namespace), SessionPolicy(idle_s=60, absolute_s=600))
    session_id, _ = await store.create("ada")
    await asyncio.gather(store.get(session_id), store.delete(session_id))
    assert await redis.exists(store.key(session_id)) == 0


async def test_the_sign_in_throttle_is_shared_by_two_processes_clients(
    namespace: Namespace,
) -> None:
    prefix = _prefix(namespace)
    one, two = redis_client(namespace.settings), redis_client(namespace.settings)
    try:
        a = RedisRateLimiter(one, prefix, name="admin-login")
        b = RedisRateLimiter(two, prefix, name="admin-login")
        verdicts = [await (a if n % 2 else b).hit("login:ada", 5, 60) for n in range(6)]
        assert [v.allowed for v in verdicts] == [True] * 5 + [False]
        assert 1 <= verdicts[-1].retry_after_s <= 60
        assert (await a.hit("login:bob", 5, 60)).allowed
    finally:
        await one.aclose()
        await two.aclose()
