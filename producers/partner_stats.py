"""How each partner's pushes and pulls are going, for the dashboard's
partners page (docs/adr/0034): the last change a partner accepted, the
failures since the lane started (refused, retried or abandoned requests) and
the last of them; and when the partner last read one of our Sender
interfaces.

A lane tallies in memory (``PushTally``) and writes the tally to Redis
after each batch it commits (``RedisPushStats.save``, one hash per partner,
fields per module): one round trip per batch, not per change. A process
that dies loses at most the last batch's tally, and the numbers are a
picture for people, not a record: the log and the lanes' committed offsets
are what is delivered. Nothing here ever decides anything.

Pulls are stamped by the API (``PullStamps``) at most once per
``_PULL_EVERY_S`` per partner and module in each process, so a partner
paging through a large list costs one Redis write, not one per page.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger(__name__)

# Each push lane's module and the suffix of its consumer group
# (``{prefix}ocpi-hub-push-{suffix}{partner_id}``), as processors/*_push.py
# declare them (a unit test holds the two together): the dashboard reads a
# lane's backlog from its group's lag.
PUSH_LANES: tuple[tuple[str, str], ...] = (
    ("locations", ""),
    ("sessions", "sessions-"),
    ("cdrs", "cdrs-"),
    ("evse_status", "evse-status-"),
)

_TTL_S = 90 * 24 * 3600  # a partner gone for three months is forgotten
_PULL_EVERY_S = 30.0


@dataclass
class PushTally:
    """One lane's pushes since it started."""

    delivered: int = 0
    failures: int = 0
    # PATCHes the partner refused as unknown, then took whole as a PUT
    # (docs/adr/0042); each PUT counts as delivered too.
    repaired: int = 0
    last_delivered_at: float | None = None
    last_failure_at: float | None = None
    last_failure: str | None = None
    dirty: bool = False

    def ok(self, at: float) -> None:
        self.delivered += 1
        self.last_delivered_at = at
        self.dirty = True

    def repaired_by_put(self, at: float) -> None:
        self.repaired += 1
        self.ok(at)

    def failed(
        self, at: float, outcome: str, http: int | None, ocpi: int | None, error: str | None
    ) -> None:
        self.failures += 1
        self.last_failure_at = at
        detail = error or f"HTTP {http}" + (f", OCPI {ocpi}" if ocpi is not None else "")
        self.last_failure = f"{outcome}: {detail}"[:200]
        self.dirty = True

    def fields(self, module: str) -> dict[str, str]:
        """The hash fields this tally sets (absent values are not written)."""
        values: dict[str, Any] = {
            "delivered": self.delivered,
            "failures": self.failures,
            "repaired": self.repaired,
            "last_delivered_at": self.last_delivered_at,
            "last_failure_at": self.last_failure_at,
            "last_failure": self.last_failure,
        }
        return {f"{module}:{k}": str(v) for k, v in values.items() if v is not None}


def stats_key(prefix: str, partner_id: str) -> str:
    return f"{prefix}ocpi-hub:partner-stats:{partner_id}"


def parse_stats(raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    """A partner's hash as ``{module: {field: value}}``: times and counts as
    numbers, the rest as text."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        text = value.decode() if isinstance(value, bytes) else str(value)
        module, _, field = name.partition(":")
        if not field:
            continue
        parsed: Any = text
        if field.endswith("_at"):
            parsed = float(text)
        elif field in ("delivered", "failures", "repaired"):
            parsed = int(text)
        out.setdefault(module, {})[field] = parsed
    return out


class RedisPushStats:
    """Where lanes and the API write, and the dashboard reads."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def save(self, partner_id: str, module: str, tally: PushTally) -> None:
        key = stats_key(self._prefix, partner_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=tally.fields(module))  # type: ignore[arg-type]
            pipe.expire(key, _TTL_S)
            await pipe.execute()
        tally.dirty = False

    async def pulled(self, partner_id: str, module: str, at: float) -> None:
        key = stats_key(self._prefix, partner_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, f"pull-{module}:last_pulled_at", str(at))
            pipe.expire(key, _TTL_S)
            await pipe.execute()

    async def read(self, partner_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        ids = list(partner_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for partner_id in ids:
                pipe.hgetall(stats_key(self._prefix, partner_id))
            found = await pipe.execute()
        return {pid: parse_stats(raw or {}) for pid, raw in zip(ids, found, strict=True)}


class PullStamps:
    """Stamps a partner's successful reads of our Sender interfaces, at most
    once per ``every_s`` per partner and module in this process."""

    def __init__(
        self,
        stats: RedisPushStats,
        every_s: float = _PULL_EVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stats = stats
        self._every_s = every_s
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._writing: set[asyncio.Task[None]] = set()

    def due(self, partner_id: str, module: str) -> float | None:
        """The time to stamp now, or None when this pair was stamped lately."""
        now = self._clock()
        last = self._last.get((partner_id, module))
        if last is not None and now - last < self._every_s:
            return None
        if len(self._last) > 10_000:  # partners x modules: never near; bounded anyway
            self._last.clear()
        self._last[(partner_id, module)] = now
        return now

    def stamp_soon(self, partner_id: str, module: str) -> None:
        """Stamp in the background when due: the partner's answer never
        waits for it, nor fails with it."""
        at = self.due(partner_id, module)
        if at is None:
            return
        task = asyncio.get_running_loop().create_task(self._write(partner_id, module, at))
        self._writing.add(task)  # held until done: a task nobody holds may be collected
        task.add_done_callback(self._writing.discard)

    async def _write(self, partner_id: str, module: str, at: float) -> None:
        try:
            await self._stats.pulled(partner_id, module, at)
        except Exception as exc:
            log.warning("pull_stamp_not_saved", partner_id=partner_id, error=type(exc).__name__)
