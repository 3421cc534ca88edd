"""Partners on the real Kafka, Redis and MongoDB, with two API instances
(two ``create_app()``, each with its own Kafka producer, Redis clients,
decision-store feed and token cache: what two API processes behind one port
hold) and a stub OCPI party to register.

A registration through one instance is recognised by the other at once; a
rotated or unregistered token stops working in both before the change is
answered; a cache that no longer hears from Redis stops answering from
memory within its lease; the partners view, built by the projection from
the same events, is the write path's state (docs/adr/0024).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo import MongoClient

from api.app import create_app
from ocpi_hub.bootstrap import Container, credentials_service, partner_tokens
from ocpi_hub.secrets import hash_token, new_token
from producers.decision_store import RedisDecisionStore
from producers.lookups import LookupCache
from producers.partners import SLICE, PartnerState
from projections.mongo.partners import PartnerQuery, PartnerViewWriter
from projections.runner import replay
from schemas.ocpi.credentials import Role
from tests.peer_stub import PeerStub, peer_stub
from tests.services import Namespace

CREDENTIALS = "/ocpi/2.2.1/credentials"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def container(self) -> Container:
        c: Container = self.app.state.container
        return c

    async def status(self, token: str) -> int:
        return (await self.http.get("/ocpi/versions", headers=auth(token))).status_code


@pytest.fixture(scope="module")
async def apis(namespace: Namespace) -> AsyncIterator[tuple[Api, Api]]:
    async with AsyncExitStack() as stack:
        pair = []
        for name in ("a", "b"):
            app = create_app(namespace.settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://api-{name}", timeout=30)
            )
            pair.append(Api(app, http))
        # Both caches have heard from Redis (their first ping) before a test runs.
        for api in pair:
            await heard(api.app.state.partner_tokens)
        yield pair[0], pair[1]


@pytest.fixture
def stub() -> Iterator[PeerStub]:
    with peer_stub("NL", "PEE") as s:
        yield s


def their_credentials(stub: PeerStub) -> dict[str, Any]:
    return {
        "token": stub.token_b,
        "url": stub.versions_url,
        "roles": [
            {
                "role": "CPO",
                "business_details": {"name": "Peer stub"},
                "party_id": stub.party_id,
                "country_code": stub.country_code,
            }
        ],
    }


async def invite(api: Api, partner_id: str) -> str:
    token_a = new_token()
    service = credentials_service(api.container, api.app.state.write_path)
    await service.invite(
        partner_id=partner_id,
        country_code="NL",
        party_id="PEE",
        role=Role.CPO,
        token_a_hash=hash_token(token_a),
        legacy_token=False,
        correlation_id="c",
    )
    return token_a


async def register(api: Api, stub: PeerStub) -> str:
    """A new partner (the stub) invited and registered through ``api``; the
    token it is to use with us."""
    token_a = await invite(api, f"NL-PEE-{uuid.uuid4().hex[:6]}")
    registered = await api.http.post(
        CREDENTIALS, headers=auth(token_a), json=their_credentials(stub)
    )
    assert registered.json()["status_code"] == 1000, registered.text
    token_c: str = registered.json()["data"]["token"]
    return token_c


async def heard(cache: LookupCache[PartnerState]) -> None:
    """Until the cache has heard from Redis (its subscription confirmed)."""
    for _ in range(300):
        if cache.fresh():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the cache never heard from Redis")


class CountingFinds:
    """Counts the finds one instance's write path sends to Redis."""

    def __init__(self, api: Api) -> None:
        self.store: RedisDecisionStore = api.app.state.write_path.store
        self.count = 0
        self._find = self.store.find

    async def find(self, slice_name: str, name: str) -> Any:
        self.count += 1
        return await self._find(slice_name, name)

    def __enter__(self) -> CountingFinds:
        self.store.find = self.find  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        self.store.find = self._find  # type: ignore[method-assign]


async def test_a_registration_on_one_instance_is_known_to_the_other_at_once(
    apis: tuple[Api, Api], stub: PeerStub
) -> None:
    a, b = apis
    token_a = await invite(a, f"NL-PEE-{uuid.uuid4().hex[:6]}")
    assert await b.status(token_a) == 200  # B caches the invitation
    registered = await a.http.post(CREDENTIALS, headers=auth(token_a), json=their_credentials(stub))
    assert registered.json()["status_code"] == 1000, registered.text
    token_c = registered.json()["data"]["token"]
    # The very next requests, on the other instance: TOKEN_A is spent there
    # too although B had it cached, the new token works.
    assert await b.status(token_a) == 401
    assert await b.status(token_c) == 200
    # From then on B answers from memory, without asking Redis.
    with CountingFinds(b) as finds:
        for _ in range(20):
            assert await b.status(token_c) == 200
    assert finds.count == 0


async def test_a_rotated_or_unregistered_token_stops_working_everywhere_at_once(
    apis: tuple[Api, Api], stub: PeerStub
) -> None:
    a, b = apis
    token_a = await invite(a, f"NL-PEE-{uuid.uuid4().hex[:6]}")
    registered = await a.http.post(CREDENTIALS, headers=auth(token_a), json=their_credentials(stub))
    token_c = registered.json()["data"]["token"]
    for api in (a, b):  # cached in both
        assert await api.status(token_c) == 200
        assert await api.status(token_c) == 200

    rotated = await a.http.put(CREDENTIALS, headers=auth(token_c), json=their_credentials(stub))
    assert rotated.json()["status_code"] == 1000, rotated.text
    new_c = rotated.json()["data"]["token"]
    assert await b.status(token_c) == 401
    assert await a.status(token_c) == 401
    assert await b.status(new_c) == 200

    # Unregistered through B: A refuses the token on the next request.
    assert await a.status(new_c) == 200
    gone = await b.http.delete(CREDENTIALS, headers=auth(new_c))
    assert gone.json()["status_code"] == 1000
    assert await a.status(new_c) == 401
    assert await b.status(new_c) == 401


async def test_the_writer_waits_for_every_listening_cache(apis: tuple[Api, Api]) -> None:
    a, _ = apis
    store: RedisDecisionStore = a.app.state.write_path.store
    started = time.monotonic()
    assert await store.settle(SLICE.name, timeout_s=2.0) == 0  # both confirmed
    assert time.monotonic() - started < 1.0


async def test_a_write_is_answered_only_once_a_slow_cache_dropped_the_old_token(
    apis: tuple[Api, Api], stub: PeerStub
) -> None:
    """A cache whose process takes its time over each announcement (a busy
    event loop): the rotation waits for it, so the old token is gone from it
    when the rotation is answered."""
    a, b = apis
    store: RedisDecisionStore = b.app.state.write_path.store

    async def slow_feed() -> AsyncIterator[float | None]:
        async for heard in store.changes(SLICE.name, ping_s=0.1):
            if heard is None:
                await asyncio.sleep(0.3)
            yield heard

    cache = LookupCache(b.app.state.write_path, SLICE, slow_feed, lease_s=10)
    following = asyncio.create_task(cache.follow())
    try:
        token_c = await register(a, stub)
        await heard(cache)
        assert await cache.find(hash_token(token_c)) is not None  # cached
        started = time.monotonic()
        rotated = await a.http.put(CREDENTIALS, headers=auth(token_c), json=their_credentials(stub))
        assert rotated.json()["status_code"] == 1000
        assert time.monotonic() - started >= 0.3  # it waited for the slow cache
        assert await cache.find(hash_token(token_c)) is None
    finally:
        following.cancel()


async def test_a_cache_that_stops_hearing_from_redis_stops_using_memory_within_its_lease(
    apis: tuple[Api, Api], stub: PeerStub
) -> None:
    """A third cache on B's write path whose feed stops being read (as in a
    process frozen or cut off after it cached a token): the writer does not
    wait for it, and it rejects the rotated token no later than its lease
    after the rotation."""
    a, b = apis
    lease = 0.5
    settings = b.container.settings.model_copy(update={"partner_cache_lease_s": lease})
    cache: LookupCache[PartnerState] = partner_tokens(settings, b.app.state.write_path)
    following = asyncio.create_task(cache.follow())
    try:
        token_c = await register(a, stub)
        await heard(cache)
        assert (await cache.find(hash_token(token_c))) is not None
    finally:
        following.cancel()  # it hears nothing from here on
    rotated_at = time.monotonic()
    rotated = await a.http.put(CREDENTIALS, headers=auth(token_c), json=their_credentials(stub))
    assert rotated.json()["status_code"] == 1000
    while (state := await cache.find(hash_token(token_c))) is not None and (
        state.their_token_hash == hash_token(token_c)
    ):
        assert time.monotonic() - rotated_at < lease + 0.25, "stale beyond the lease"
        await asyncio.sleep(0.01)
    assert not cache.fresh()
    # The API instances themselves were told at once.
    assert await b.status(token_c) == 401


async def test_the_partners_view_is_the_write_paths_state(
    apis: tuple[Api, Api], stub: PeerStub, namespace: Namespace
) -> None:
    a, b = apis
    partner_id = f"NL-PEE-{uuid.uuid4().hex[:6]}"
    token_a = await invite(a, partner_id)
    registered = await b.http.post(CREDENTIALS, headers=auth(token_a), json=their_credentials(stub))
    token_c = registered.json()["data"]["token"]
    await a.http.put(CREDENTIALS, headers=auth(token_c), json=their_credentials(stub))
    s = namespace.settings
    # The writer is the projections process's (sync client); the query the
    # API's (its async client).
    with MongoClient(s.mongo_url, tz_aware=True) as client:
        writer = PartnerViewWriter(client[s.mongo_db])
        # The projection's path: every event from offset zero through the
        # writer, twice (a replay over a view that has them changes nothing).
        for _ in range(2):
            await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=500)
            held = await a.app.state.write_path.state(SLICE, partner_id)
            assert held is not None and held.status == "registered"
            assert await PartnerQuery(a.container.mongo[s.mongo_db]).get(partner_id) == held
