"""A process's cache of ``WritePath.find`` for one slice (docs/adr/0024):
the partner behind a token, answered from memory on every request but the
first, and never from a state a commit has changed since.

The decision store announces every commit of a slice with lookups on a
feed (``RedisDecisionStore.changes``). The cache drops everything it holds
when a commit is announced (such commits are rare: a registration, a token
rotation), and a write answers only once every cache confirmed it
(``WritePath`` settles), so a rotated or unregistered token stops working in
every API process before the rotation is answered.

A cache that cannot confirm in time, because its process is frozen or its
feed lags, stops using what it holds by itself: it answers from memory only
while it has *heard* from the store within ``lease_s``, i.e. while the feed
has shown that every commit made before some moment less than ``lease_s``
ago reached it. Otherwise every find goes to the store. So a token a commit
invalidated is accepted from memory at most ``lease_s`` after that commit,
in the worst case, and not at all in the usual one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

import structlog

from producers.write_path import Slice, WritePath

log = structlog.get_logger(__name__)

S = TypeVar("S")

# Follows the slice's commits: None when states changed, a time T
# (``time.monotonic``) when every commit made before T was yielded.
Feed = Callable[[], AsyncIterator[float | None]]


class LookupCache(Generic[S]):
    """``find`` of one slice, kept in this process's memory."""

    def __init__(
        self,
        write_path: WritePath,
        slice_: Slice[S],
        feed: Feed | None,
        *,
        lease_s: float,
        size: int = 10_000,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write_path = write_path
        self._slice = slice_
        self._feed = feed
        self._lease_s = lease_s
        self._size = size
        self._retry_s = retry_s
        self._clock = clock
        self._entries: OrderedDict[str, S] = OrderedDict()
        # Bumped whenever the entries are dropped: a find that was under way
        # then may have read the state from before the change, so it does
        # not keep what it read.
        self._generation = 0
        self._heard = -math.inf

    def fresh(self) -> bool:
        """Whether what the cache holds may be used: the feed showed recently
        that it has seen every commit."""
        return self._clock() - self._heard < self._lease_s

    async def find(self, name: str) -> S | None:
        """The state found by ``name`` (``WritePath.find``), from memory
        when the cache may be used; raises what ``WritePath.find`` raises."""
        if self.fresh():
            state = self._entries.get(name)
            if state is not None:
                self._entries.move_to_end(name)
                return state
        elif self._entries:
            # Not heard from in time: what is held may be stale, and must
            # not be used again once the feed speaks.
            self._drop()
        generation = self._generation
        found = await self._write_path.find(self._slice, name)
        # Unknown names are not kept: a name a commit adds must be found at
        # once, and random guesses must not fill the memory.
        if found is not None and generation == self._generation and self.fresh():
            self._entries[name] = found
            self._entries.move_to_end(name)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return found

    async def follow(self) -> None:
        """Follow the feed until cancelled, again after any failure (the
        cache is not used meanwhile). Without a feed nothing is cached."""
        if self._feed is None:
            return
        while True:
            try:
                async for heard in self._feed():
                    if heard is None:
                        self._drop()
                    else:
                        self._heard = max(self._heard, heard)
            except Exception as exc:
                log.warning(
                    "lookup_feed_lost",
                    slice=self._slice.name,
                    error=f"{type(exc).__name__}: {exc}"[:200],
                )
            # Commits may have been missed: hold nothing until heard again.
            self._heard = -math.inf
            self._drop()
            await asyncio.sleep(self._retry_s)

    def _drop(self) -> None:
        self._entries.clear()
        self._generation += 1
