"""A process's cache of ``WritePath.find`` (producers/lookups.py) with a
feed the test controls: hits stay in memory, an announced change drops
everything, a find under way during a change does not keep what it read,
and nothing is used from memory once the feed has been silent for the lease.
The same cache against Redis, across two API instances:
tests/integration/test_partner_tokens.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.lookups import LookupCache
from producers.partners import SLICE, PartnerState
from producers.write_path import Stored, WritePath

LEASE = 1.0


class CountingStore(InMemoryDecisionStore):
    """Counts finds; a find can be made to wait for the test."""

    def __init__(self) -> None:
        super().__init__()
        self.finds = 0
        self.gate: asyncio.Event | None = None

    async def find(self, slice_name: str, name: str) -> tuple[str, Stored] | None:
        self.finds += 1
        found = await super().find(slice_name, name)
        if self.gate is not None:
            await self.gate.wait()
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def partner(token_hash: str, status: str = "registered") -> PartnerState:
    return PartnerState(partner_id="P", status=status, their_token_hash=token_hash)  # type: ignore[arg-type]


class Feed:
    """What the decision store would announce, fed by the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[float | Exception | None] = asyncio.Queue()
        self.opened = 0

    async def __call__(self) -> AsyncIterator[float | None]:
        self.opened += 1
        while True:
            item = await self.queue.get()
            if isinstance(item, Exception):
                raise item
            yield item


async def turns() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def hear(feed: Feed, clock: Clock) -> None:
    """The feed shows that every commit until now reached the cache."""
    await feed.queue.put(clock.now)
    await turns()


@pytest.fixture
def store() -> CountingStore:
    s = CountingStore()
    s.seed(SLICE, "P", partner("h1"))
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def feed() -> Feed:
    return Feed()


@pytest.fixture
def cache(store: CountingStore, clock: Clock, feed: Feed) -> Iterator[LookupCache[PartnerState]]:
    log = InMemoryEventLog()
    path = WritePath(log, store, InMemoryLogHistory(log))
    yield LookupCache(path, SLICE, feed, lease_s=LEASE, retry_s=0.001, clock=clock)


@pytest.fixture
async def following(cache: LookupCache[PartnerState]) -> AsyncIterator[LookupCache[PartnerState]]:
    task = asyncio.create_task(cache.follow())
    yield cache
    task.cancel()


async def test_nothing_is_kept_before_the_feed_has_spoken(
    following: LookupCache[PartnerState], store: CountingStore
) -> None:
    assert await following.find("h1") == partner("h1")
    assert await following.find("h1") == partner("h1")
    assert store.finds == 2
    assert not following.fresh()


async def test_a_found_partner_is_kept_until_a_change_is_announced(
    following: LookupCache[PartnerState], store: CountingStore, feed: Feed, clock: Clock
) -> None:
    await hear(feed, clock)
    assert following.fresh()
    await following.find("h1")
    await following.find("h1")
    assert store.finds == 1  # the second from memory
    # A rotation: the store now finds P by h2 only, and says so.
    store.seed(SLICE, "P", partner("h2"), offset=1)
    store.names.pop((SLICE.name, "h1"))
    await feed.queue.put(None)
    await turns()
    assert await following.find("h1") is None
    assert await following.find("h2") == partner("h2")
    assert store.finds == 3


async def test_unknown_names_are_not_kept(
    following: LookupCache[PartnerState], store: CountingStore, feed: Feed, clock: Clock
) -> None:
    await hear(feed, clock)
    assert await following.find("nobody") is None
    assert await following.find("nobody") is None
    assert store.finds == 2


async def test_a_find_under_way_during_a_change_does_not_keep_what_it_read(
    following: LookupCache[PartnerState], store: CountingStore, feed: Feed, clock: Clock
) -> None:
    await hear(feed, clock)
    store.gate = asyncio.Event()
    under_way = asyncio.create_task(following.find("h1"))
    await turns()  # it has read P as it was ...
    await feed.queue.put(None)  # ... and then P changes
    await turns()
    store.gate.set()
    assert await under_way == partner("h1")  # answered: it was true when read
    store.gate = None
    await following.find("h1")
    assert store.finds == 2  # but not kept


async def test_a_silent_feed_stops_the_cache_after_the_lease(
    following: LookupCache[PartnerState], store: CountingStore, feed: Feed, clock: Clock
) -> None:
    await hear(feed, clock)
    await following.find("h1")
    # The partner is unregistered, but the announcement never arrives.
    store.seed(SLICE, "P", partner("h1", status="unregistered"), offset=1)
    clock.now += LEASE * 0.9
    assert (await following.find("h1")) == partner("h1")  # within the lease
    clock.now += LEASE * 0.2
    assert not following.fresh()
    assert (await following.find("h1")) == partner("h1", status="unregistered")
    # Heard again (a ping answered): memory is used again.
    await hear(feed, clock)
    finds = store.finds
    await following.find("h1")
    assert store.finds == finds + 1  # the stale entry was not kept: read once more
    await following.find("h1")
    assert store.finds == finds + 1


async def test_a_failed_feed_drops_everything_and_is_followed_again(
    following: LookupCache[PartnerState], store: CountingStore, feed: Feed, clock: Clock
) -> None:
    await hear(feed, clock)
    await following.find("h1")
    await feed.queue.put(ConnectionError("redis went away"))
    await asyncio.sleep(0.05)
    assert not following.fresh()
    assert feed.opened == 2  # followed again
    await following.find("h1")
    assert store.finds == 2


async def test_without_a_feed_every_find_goes_to_the_store(store: CountingStore) -> None:
    log = InMemoryEventLog()
    cache = LookupCache(WritePath(log, store, InMemoryLogHistory(log)), SLICE, None, lease_s=LEASE)
    await cache.follow()  # returns at once
    await cache.find("h1")
    await cache.find("h1")
    assert store.finds == 2
