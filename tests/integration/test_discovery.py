"""QR discovery against real services: the Redis rate limiter (counts,
per-client windows, expiry) and the location view's lookup by EVSE ID in
the real MongoDB-wire server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from api.rate_limit import RedisRateLimiter
from projections.mongo.folding import Doc
from projections.mongo.locations import COLLECTION, LocationViewQuery, LocationViewWriter
from tests.ocpi_objects import evse, location
from tests.services import Namespace
from tests.unit.factories import put


async def test_the_redis_limiter_counts_per_client_and_windows_expire(
    namespace: Namespace,
) -> None:
    client = aioredis.Redis.from_url(namespace.settings.redis_url)
    try:
        limiter = RedisRateLimiter(client, namespace.settings.topic_prefix, name=uuid.uuid4().hex)
        verdicts = await asyncio.gather(*(limiter.hit("10.0.0.1", 3, 1) for _ in range(4)))
        assert sorted(v.count for v in verdicts) == [1, 2, 3, 4]
        assert sorted(v.allowed for v in verdicts) == [False, True, True, True]
        assert all(v.retry_after_s == 1 for v in verdicts)
        assert (await limiter.hit("10.0.0.2", 3, 1)).count == 1  # per client
        ttl = await client.ttl(limiter.key("10.0.0.1"))
        assert 0 < ttl <= 1
        assert limiter.key("x").startswith(f"{namespace.settings.topic_prefix}ocpi-hub:")
        await asyncio.sleep(1.3)
        again = await limiter.hit("10.0.0.1", 3, 1)
        assert (again.allowed, again.count) == (True, 1)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url) as client:
        database: Database[Doc] = client[f"{namespace.name}_discovery"]
        LocationViewWriter(database).prepare()
        yield database
        client.drop_database(database.name)


async def test_the_location_view_finds_locations_by_evse_id(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    writer = LocationViewWriter(db)
    writer.apply(
        [
            put(location(evses=[evse("E1", evse_id="NL*ABC*E1*1"), evse("E2")]), offset=1),
            put(
                location("LOC2", evses=[evse("E1", evse_id="nl*abc*e2*1")]),
                location_id="LOC2",
                offset=2,
            ),
        ]
    )
    query = LocationViewQuery(aio_mongo[db.name])
    [found] = await query.by_evse_id("nlabce11")
    assert found["id"] == "LOC1"
    assert [loc["id"] for loc in await query.by_evse_id("NL*ABC*E2*1")] == ["LOC2"]
    assert await query.by_evse_id("NL*ABC*E3*1") == []
    indexed = [i["key"] for i in db[COLLECTION].list_indexes()]
    assert {"_evse_ids": 1} in [dict(k) for k in indexed]
