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
    ocpi-hub:ws:<slice>:ready               set once the states were built
    ocpi-hub:ws:<slice>:rebuild             the process rebuilding them

Each operation is one script, so one round trip and atomic. The store must
not evict keys (``maxmemory-policy noeviction``) and must either keep
everything across a restart or nothing: an empty store is noticed (no
``ready``) and rebuilt from the log; a store that lost only its last second
is not.
"""

from __future__ import annotations

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

_COMMIT = """
if redis.call('HGET', KEYS[1], 'lk') ~= ARGV[1] then return 0 end
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3], 'p', ARGV[4], 'o', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'v', '', 'p', ARGV[4], 'o', ARGV[5])
  redis.call('HDEL', KEYS[1], 's')
end
redis.call('HDEL', KEYS[1], 'lk', 'lu', 'la')
return 1
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

    def _key(self, slice_name: str, key: str) -> str:
        return f"{self._prefix}{slice_name}:k:{key}"

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
    ) -> bool:
        kept = await self._commit(
            keys=[self._key(slice_name, key)],
            args=[token, version, raw or b"", partition, offset, "1" if raw is not None else "0"],
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

    async def lead_rebuild(self, slice_name: str, token: str, ttl_ms: int) -> bool:
        key = f"{self._prefix}{slice_name}:rebuild"
        return bool(await self._lead(keys=[key], args=[token, ttl_ms]))

    async def rebuilt(self, slice_name: str, states: dict[str, tuple[bytes, int, int]]) -> None:
        pattern = f"{self._prefix}{slice_name}:k:*"
        stale = [k async for k in self._redis.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(stale), 1000):
            await self._redis.unlink(*stale[start : start + 1000])
        items = list(states.items())
        for start in range(0, len(items), 1000):
            pipe = self._redis.pipeline(transaction=False)
            for key, (raw, partition, offset) in items[start : start + 1000]:
                pipe.hset(
                    self._key(slice_name, key),
                    mapping={"v": f"r{offset}p{partition}", "s": raw, "p": partition, "o": offset},
                )
            await pipe.execute()
        await self._redis.set(self._ready_key(slice_name), "1")
        await self._redis.delete(f"{self._prefix}{slice_name}:rebuild")


class InMemoryDecisionStore:
    """The same contract in a dict: for tests of the HTTP shells and the
    write path without services."""

    def __init__(self, *, ready: bool = True) -> None:
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self.ready_slices: set[str] = set()
        self._all_ready = ready
        self._leaders: dict[str, str] = {}

    def seed(
        self, slice_: Slice[S], key: str, state: S, *, partition: int = 0, offset: int = 0
    ) -> None:
        """Hold ``state`` for ``key`` as if its events were at ``offset``."""
        self.states[(slice_.name, key)] = {
            "v": f"seed{offset}",
            "s": slice_.dump(state),
            "p": partition,
            "o": offset,
        }

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

    async def lead_rebuild(self, slice_name: str, token: str, ttl_ms: int) -> bool:
        if self._leaders.get(slice_name, token) != token:
            return False
        self._leaders[slice_name] = token
        return True

    async def rebuilt(self, slice_name: str, states: dict[str, tuple[bytes, int, int]]) -> None:
        for ident in [i for i in self.states if i[0] == slice_name]:
            del self.states[ident]
        for key, (raw, partition, offset) in states.items():
            self.states[(slice_name, key)] = {
                "v": f"r{offset}p{partition}",
                "s": raw,
                "p": partition,
                "o": offset,
            }
        self.ready_slices.add(slice_name)
        self._leaders.pop(slice_name, None)
