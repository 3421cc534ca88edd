"""The decision store contract against the real Redis (the same suite runs
against the in-memory fake in tests/unit/test_decision_store.py)."""

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from producers.decision_store import RedisDecisionStore
from tests.decision_store_contract import *  # noqa: F403 - the contract's tests
from tests.services import Namespace


@pytest.fixture
async def store(namespace: Namespace) -> AsyncIterator[RedisDecisionStore]:
    client = aioredis.Redis.from_url(namespace.settings.redis_url)
    try:
        yield RedisDecisionStore(client, namespace.settings.topic_prefix)
    finally:
        await client.aclose()
