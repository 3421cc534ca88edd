"""Adapters of the decision store port (producers/write_path.py,
docs/adr/0022): Redis, shared by every API process, and an in-memory fake
for tests without services. A contract suite runs against both
(tests/unit/test_decision_store.py, tests/integration/test_decision_store.py).

Redis layout, under the deployment prefix, per slice:

    ocpi-hub:ws:<slice>:k:<aggregate key>   hash
        v   version of the state ('' : the aggregate has no state)
        s   the state, as the slice dumps it
        p o partition and offset of the last event folded into it
        lk  token of the holder; lu: held until (ms); la: held since (ms)
        n   (a slice with lookups) the state's names, space-separated
    ocpi-hub:ws:<slice>:n                   hash: name -> aggregate key
    ocpi-hub:ws:<slice>:ready               set once the states were built
    ocpi-hub:ws:<slice>:rebuild             the process rebuilding them
    ocpi-hub:ws:<slice>:changes             channel: a commit of a slice with
                                            lookups ("changed"), a writer
                                            asking caches to confirm
                                            ("settle <id>")
    ocpi-hub:ws:<slice>:ack:<id>            list: one element per confirmation

Each operation is one script, so one round trip and atomic. The store must
not evict keys (``maxmemory-policy noeviction``) and must either keep
everything across a restart or nothing: an empty store is noticed (no
``ready``) and rebuilt from the log; a store that lost only its last second
is not.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis

from producers.write_path import Claim, Hold, Slice, Stored

S = TypeVar("S")

_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 0 then return {'NOT_READY'} end
local h = redis.call('HMGET', KEYS[1], 'v', 'p', 'o', 'lk', 'lu', 'la')
local now = tonumber(ARGV[2])
local outcome = 'OK'
local since = now
if h[4] then
  if tonumber(h[5]) > now then return {'BUSY'} end
  outcome = 'RECOVER'
  since = tonumber(h[6])
end
redis.call('HSET', KEYS[1], 'lk', ARGV[1], 'lu', now + tonumber(ARGV[3]), 'la', since)
local raw = false
if h[1] and h[1] ~= '' and h[1] ~= ARGV[4] then raw = redis.call('HGET', KEYS[1], 's') end
return {outcome, h[1] or '', raw, h[2] or '', h[3] or '', since}
"""

# Stores the state if the caller still holds the key, and releases it.
_STORE = """
if redis.call('HGET', KEYS[1], 'lk') ~= ARGV[1] then return 0 end
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3], 'p', ARGV[4], 'o', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'v', '', 'p', ARGV[4], 'o', ARGV[5])
  redis.call('HDEL', KEYS[1], 's')
end
redis.call('HDEL', KEYS[1], 'lk', 'lu', 'la')
"""

_COMMIT = _STORE + "return 1\n"

# After _STORE, for a slice with lookups: the state's names replace those of
# the previous state (a name another key took since is left to it), and the
# commit is announced to the caches of finds, all in the same step.
_NAMES = """
local old = redis.call('HGET', KEYS[1], 'n')
if old then
  for name in string.gmatch(old, '%S+') do
    if redis.call('HGET', KEYS[2], name) == ARGV[7] then redis.call('HDEL', KEYS[2], name) end
  end
end
if #ARGV > 8 then
  local names = {}
  for i = 9, #ARGV do
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[7])
    names[#names + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], 'n', table.concat(names, ' '))
else
  redis.call('HDEL', KEYS[1], 'n')
end
redis.call('PUBLISH', ARGV[8], 'changed')
return 1
"""

_COMMIT_NAMED = _STORE + _NAMES

# The state hash is named from the key the index holds, so it is not among
# KEYS: fine on one Redis (scripts without flags may do this), not on a
# cluster.
_FIND = """
local key = redis.call('HGET', KEYS[1], ARGV[1])
if not key then return false end
local h = redis.call('HMGET', ARGV[2] .. key, 'v', 's', 'p', 'o')
if not h[1] then return false end
return {key, h[1], h[2] or false, h[3] or '', h[4] or ''}
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'lk') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'lk', 'lu', 'la')
end
return 0
"""

_ABANDON = """
if redis.call('HGET', KEYS[1], 'lk') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'lu', ARGV[2])
end
return 0
"""

_PEEK = """
local h = redis.call('HMGET', KEYS[1], 'v', 'p', 'o')
if not h[1] then return false end
local raw = false
if h[1] ~= '' and h[1] ~= ARGV[1] then raw = redis.call('HGET', KEYS[1], 's') end
return {h[1], raw, h[2] or '', h[3] or ''}
"""

_LEAD = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def _int(raw: Any) -> int | None:
    if raw is None or raw in (b"", ""):
        return None
    return int(raw)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisDecisionStore:
    def __init__(self, redis: aioredis.Redis, prefix: str = "") -> None:
        self._redis = redis
        self._prefix = f"{prefix}ocpi-hub:ws:"
        self._claim: Any = redis.register_script(_CLAIM)
        self._commit: Any = redis.register_script(_COMMIT)
        self._release: Any = redis.register_script(_RELEASE)
        self._abandon: Any = redis.register_script(_ABANDON)
        self._peek: Any = redis.register_script(_PEEK)
        self._lead: Any = redis.register_script(_LEAD)
        self._commit_named: Any = redis.register_script(_COMMIT_NAMED)
        self._find: Any = redis.register_script(_FIND)

    def _key(self, slice_name: str, key: str) -> str:
        return f"{self._prefix}{slice_name}:k:{key}"

    def _index(self, slice_name: str) -> str:
        return f"{self._prefix}{slice_name}:n"

    def _channel(self, slice_name: str) -> str:
        # Channels are not per database: the prefix keeps namespaces apart.
        return f"{self._prefix}{slice_name}:changes"

    def _ack(self, slice_name: str, ident: str) -> str:
        return f"{self._prefix}{slice_name}:ack:{ident}"

    def _ready_key(self, slice_name: str) -> str:
        return f"{self._prefix}{slice_name}:ready"

    async def claim(
        self, slice_name: str, key: str, token: str, *, now_ms: int, ttl_ms: int, have: str | None
    ) -> Claim:
        reply = await self._claim(
            keys=[self._key(slice_name, key), self._ready_key(slice_name)],
            args=[token, now_ms, ttl_ms, have or ""],
        )
        outcome = Hold(_text(reply[0]))
        if outcome in (Hold.NOT_READY, Hold.BUSY):
            return Claim(outcome)
        version, raw, partition, offset, since = reply[1:6]
        stored = Stored(_text(version), raw, _int(partition), _int(offset))
        return Claim(outcome, stored, int(since))

    async def commit(
        self,
        slice_name: str,
        key: str,
        token: str,
        *,
        version: str,
        raw: bytes | None,
        partition: int,
        offset: int,
        names: Sequence[str] | None = None,
    ) -> bool:
        args = [token, version, raw or b"", partition, offset, "1" if raw is not None else "0"]
        if names is None:
            kept = await self._commit(keys=[self._key(slice_name, key)], args=args)
            return bool(kept)
        kept = await self._commit_named(
            keys=[self._key(slice_name, key), self._index(slice_name)],
            args=[*args, key, self._channel(slice_name), *_checked(names)],
        )
        return bool(kept)

    async def release(self, slice_name: str, key: str, token: str) -> None:
        await self._release(keys=[self._key(slice_name, key)], args=[token])

    async def abandon(self, slice_name: str, key: str, token: str, *, until_ms: int) -> None:
        await self._abandon(keys=[self._key(slice_name, key)], args=[token, until_ms])

    async def peek(self, slice_name: str, key: str, *, have: str | None) -> Stored | None:
        reply = await self._peek(keys=[self._key(slice_name, key)], args=[have or ""])
        if not reply:
            return None
        version, raw, partition, offset = reply
        return Stored(_text(version), raw, _int(partition), _int(offset))

    async def position(self, slice_name: str, key: str) -> tuple[int, int] | None:
        partition, offset = await self._redis.hmget(self._key(slice_name, key), ["p", "o"])
        p, o = _int(partition), _int(offset)
        return (p, o) if p is not None and o is not None else None

    async def ready(self, slice_name: str) -> bool:
        return bool(await self._redis.exists(self._ready_key(slice_name)))

    async def keys(self, slice_name: str) -> list[str]:
        # SCAN walks the keyspace in steps (never blocks Redis like KEYS);
        # a hash left by a claim of a key that never got a state has v ''.
        head = self._key(slice_name, "")
        pattern = _glob_escaped(head) + "*"
        found: list[str] = []
        async for name in self._redis.scan_iter(match=pattern, count=1000):
            found.append(_text(name).removeprefix(head))
        if not found:
            return []
        versions = []
        for start in range(0, len(found), 1000):
            pipe = self._redis.pipeline(transaction=False)
            for key in found[start : start + 1000]:
                pipe.hget(self._key(slice_name, key), "v")
            versions += await pipe.execute()
        return [key for key, version in zip(found, versions, strict=True) if version]

    async def lead_rebuild(self, slice_name: str, token: str, ttl_ms: int) -> bool:
        key = f"{self._prefix}{slice_name}:rebuild"
        return bool(await self._lead(keys=[key], args=[token, ttl_ms]))

    async def rebuilt(
        self,
        slice_name: str,
        states: dict[str, tuple[bytes, int, int]],
        names: dict[str, Sequence[str]] | None = None,
    ) -> None:
        pattern = f"{self._prefix}{slice_name}:k:*"
        stale = [k async for k in self._redis.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(stale), 1000):
            await self._redis.unlink(*stale[start : start + 1000])
        await self._redis.unlink(self._index(slice_name))
        for chunk in _chunks(list(states.items())):
            pipe = self._redis.pipeline(transaction=False)
            for key, (raw, partition, offset) in chunk:
                mapping: dict[Any, Any] = {
                    "v": f"r{offset}p{partition}",
                    "s": raw,
                    "p": partition,
                    "o": offset,
                }
                found_by = _checked(names.get(key, ())) if names is not None else []
                if found_by:
                    mapping["n"] = " ".join(found_by)
                    pipe.hset(self._index(slice_name), mapping=dict.fromkeys(found_by, key))
                pipe.hset(self._key(slice_name, key), mapping=mapping)
            await pipe.execute()
        await self._redis.set(self._ready_key(slice_name), "1")
        await self._redis.delete(f"{self._prefix}{slice_name}:rebuild")
        if names is not None:
            await self._redis.publish(self._channel(slice_name), "changed")

    async def find(self, slice_name: str, name: str) -> tuple[str, Stored] | None:
        reply = await self._find(
            keys=[self._index(slice_name)], args=[name, f"{self._prefix}{slice_name}:k:"]
        )
        if not reply:
            return None
        key, version, raw, partition, offset = reply
        return _text(key), Stored(_text(version), raw, _int(partition), _int(offset))

    async def settle(self, slice_name: str, *, timeout_s: float) -> int:
        ident = uuid.uuid4().hex
        ack = self._ack(slice_name, ident)
        listeners = int(await self._redis.publish(self._channel(slice_name), f"settle {ident}"))
        confirmed = 0
        deadline = time.monotonic() + timeout_s
        try:
            while confirmed < listeners:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # Short waits: the client's socket timeout is a few seconds,
                # and BLPOP with 0 would wait for ever.
                if await self._redis.blpop([ack], timeout=max(min(left, 1.0), 0.01)):
                    confirmed += 1
        finally:
            await self._redis.unlink(ack)
        return listeners - confirmed

    async def changes(self, slice_name: str, *, ping_s: float) -> AsyncIterator[float | None]:
        """Follow the commits of a slice with lookups, for a process's cache
        of finds (producers/lookups.py). Yields None when states changed
        (drop what you cached), and a time T (``time.monotonic()``) when
        every commit made before T has been yielded. Settles are confirmed
        here, once everything before them was yielded. Raises when the
        connection fails: commits may then have been missed."""
        pubsub = self._redis.pubsub()
        try:
            subscribed_at = time.monotonic()
            await pubsub.subscribe(self._channel(slice_name))
            pinged = subscribed_at
            while True:
                message = await pubsub.get_message(timeout=ping_s)
                if message is not None:
                    kind, data = message["type"], message["data"]
                    if kind == "subscribe":
                        # Commits from here on reach us, earlier ones did not.
                        yield None
                        yield subscribed_at
                    elif kind == "pong":
                        # Redis answers a PING after every message it sent
                        # before it: all commits before the PING went out.
                        yield float(data)
                    elif kind == "message" and data.startswith(b"settle "):
                        await self._confirm(slice_name, data[len(b"settle ") :].decode())
                    elif kind == "message":
                        yield None
                now = time.monotonic()
                if now - pinged >= ping_s:
                    await pubsub.ping(repr(now))
                    pinged = now
        finally:
            await pubsub.aclose()

    async def _confirm(self, slice_name: str, ident: str) -> None:
        ack = self._ack(slice_name, ident)
        pipe = self._redis.pipeline(transaction=False)
        pipe.rpush(ack, 1)
        pipe.pexpire(ack, 10_000)  # the writer may have given up
        await pipe.execute()


# A rebuild sends the states in pipelines of at most this many keys and
# about this many bytes: 1,000 corporations' billing states of ~400 KB in one
# pipeline (400 MB) ran past the client's socket timeout (bench.invoices).
_REBUILD_KEYS = 1000
_REBUILD_BYTES = 8 * 1024 * 1024


def _chunks(
    items: list[tuple[str, tuple[bytes, int, int]]],
) -> Iterator[list[tuple[str, tuple[bytes, int, int]]]]:
    chunk: list[tuple[str, tuple[bytes, int, int]]] = []
    size = 0
    for item in items:
        if chunk and (len(chunk) >= _REBUILD_KEYS or size + len(item[1][0]) > _REBUILD_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item[1][0])
    if chunk:
        yield chunk


def _glob_escaped(text: str) -> str:
    """``text`` matched literally by a Redis glob (SCAN MATCH)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _checked(names: Sequence[str]) -> list[str]:
    # Names are stored space-separated with the state.
    if any(not name or any(ch.isspace() for ch in name) for name in names):
        raise ValueError(f"a lookup name must be non-empty without white space: {names!r}")
    return list(names)


class InMemoryDecisionStore:
    """The same contract in a dict: for tests of the HTTP shells and the
    write path without services."""

    def __init__(self, *, ready: bool = True) -> None:
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self.ready_slices: set[str] = set()
        self._all_ready = ready
        self._leaders: dict[str, str] = {}
        self.names: dict[tuple[str, str], str] = {}  # (slice, name) -> key

    def seed(
        self, slice_: Slice[S], key: str, state: S, *, partition: int = 0, offset: int = 0
    ) -> None:
        """Hold ``state`` for ``key`` as if its events were at ``offset``
        (found by its names, for a slice with lookups)."""
        self.states[(slice_.name, key)] = {
            "v": f"seed{offset}",
            "s": slice_.dump(state),
            "p": partition,
            "o": offset,
        }
        if slice_.lookups is not None:
            found_by = _checked(slice_.lookups(state))
            if found_by:
                self.states[(slice_.name, key)]["n"] = found_by
            for name in found_by:
                self.names[(slice_.name, name)] = key

    async def claim(
        self, slice_name: str, key: str, token: str, *, now_ms: int, ttl_ms: int, have: str | None
    ) -> Claim:
        if not await self.ready(slice_name):
            return Claim(Hold.NOT_READY)
        h = self.states.setdefault((slice_name, key), {})
        outcome, since = Hold.OK, now_ms
        if "lk" in h:
            if h["lu"] > now_ms:
                return Claim(Hold.BUSY)
            outcome, since = Hold.RECOVER, h["la"]
        h.update(lk=token, lu=now_ms + ttl_ms, la=since)
        version = h.get("v", "")
        raw = h.get("s") if version and version != have else None
        return Claim(outcome, Stored(version, raw, h.get("p"), h.get("o")), since)

    async def commit(
        self,
        slice_name: str,
        key: str,
        token: str,
        *,
        version: str,
        raw: bytes | None,
        partition: int,
        offset: int,
        names: Sequence[str] | None = None,
    ) -> bool:
        h = self.states.get((slice_name, key), {})
        if h.get("lk") != token:
            return False
        h.update(v=version if raw is not None else "", p=partition, o=offset)
        if raw is not None:
            h["s"] = raw
        else:
            h.pop("s", None)
        for field in ("lk", "lu", "la"):
            h.pop(field, None)
        if names is not None:
            for old in h.pop("n", ()):
                if self.names.get((slice_name, old)) == key:
                    del self.names[(slice_name, old)]
            for name in _checked(names):
                self.names[(slice_name, name)] = key
            if names:
                h["n"] = list(names)
        return True

    async def release(self, slice_name: str, key: str, token: str) -> None:
        h = self.states.get((slice_name, key), {})
        if h.get("lk") == token:
            for field in ("lk", "lu", "la"):
                h.pop(field, None)
        if not h:
            self.states.pop((slice_name, key), None)

    async def abandon(self, slice_name: str, key: str, token: str, *, until_ms: int) -> None:
        h = self.states.get((slice_name, key), {})
        if h.get("lk") == token:
            h["lu"] = until_ms

    async def peek(self, slice_name: str, key: str, *, have: str | None) -> Stored | None:
        h = self.states.get((slice_name, key))
        if not h or "v" not in h:
            return None
        version = h["v"]
        raw = h.get("s") if version and version != have else None
        return Stored(version, raw, h.get("p"), h.get("o"))

    async def position(self, slice_name: str, key: str) -> tuple[int, int] | None:
        h = self.states.get((slice_name, key), {})
        return (h["p"], h["o"]) if h.get("p") is not None and h.get("o") is not None else None

    async def ready(self, slice_name: str) -> bool:
        return self._all_ready or slice_name in self.ready_slices

    async def keys(self, slice_name: str) -> list[str]:
        return [k for (s, k), h in self.states.items() if s == slice_name and h.get("v")]

    async def lead_rebuild(self, slice_name: str, token: str, ttl_ms: int) -> bool:
        if self._leaders.get(slice_name, token) != token:
            return False
        self._leaders[slice_name] = token
        return True

    async def rebuilt(
        self,
        slice_name: str,
        states: dict[str, tuple[bytes, int, int]],
        names: dict[str, Sequence[str]] | None = None,
    ) -> None:
        for ident in [i for i in self.states if i[0] == slice_name]:
            del self.states[ident]
        for ident in [i for i in self.names if i[0] == slice_name]:
            del self.names[ident]
        for key, (raw, partition, offset) in states.items():
            self.states[(slice_name, key)] = {
                "v": f"r{offset}p{partition}",
                "s": raw,
                "p": partition,
                "o": offset,
            }
            found_by = _checked((names or {}).get(key, ()))
            if found_by:
                self.states[(slice_name, key)]["n"] = found_by
                for name in found_by:
                    self.names[(slice_name, name)] = key
        self.ready_slices.add(slice_name)
        self._leaders.pop(slice_name, None)

    async def find(self, slice_name: str, name: str) -> tuple[str, Stored] | None:
        key = self.names.get((slice_name, name))
        h = self.states.get((slice_name, key)) if key is not None else None
        if key is None or not h or "v" not in h:
            return None
        return key, Stored(h["v"], h.get("s"), h.get("p"), h.get("o"))

    async def settle(self, slice_name: str, *, timeout_s: float) -> int:
        return 0  # no other process caches finds of an in-memory store
