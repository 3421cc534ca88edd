"""EVSE status updates through the whole running platform, and the ceilings
of the parts underneath it.

    python -m bench.evse_status [-n 5000] [-c 32] [--locations 500] [--out FILE]
                                [--skip-ceilings]

What it does, in order:

1. Pre-flight: the API answers ``/healthz``, MongoDB answers ``ping``, Kafka
   answers a metadata request; a fresh bench partner is invited and registers
   (bench/partner.py: party ZZ/B<2 hex>, country code ZZ is never assigned);
   one probe location is PUT and one probe update of it reaches the MongoDB
   view, and the processor's resolution of it too, within 30 s each (so a
   stopped processor or projection is reported up front, not after two
   minutes of waiting). Exit status 2 when any of that fails.
2. Setup (not measured): every location ``BENCH-<run id>-<n>`` is PUT with its
   EVSEs through the OCPI receiver (a PATCH needs the object to exist, else
   OCPI 2003), ``-c`` in flight, and the benchmark waits until the view shows
   them all. Runs never collide with each other or with real data.
3. Load: ``-n`` OCPI PATCHes of EVSE status with ``-c`` in flight, each with
   the partner's token, over ``-c`` keep-alive HTTP/1.1 connections. Each
   update carries its own ``last_updated``; per EVSE the stamps strictly
   increase and at most one request is in flight, so the order the platform
   sees is the order we meant.
4. Visibility: a poller thread reads the MongoDB view of the locations that
   still have invisible updates and stamps each update with the first time
   the view's served Location (``doc["location"]``) shows its EVSE at its
   ``last_updated`` or a later one. It waits at
   most 120 s after the last response; any accepted update still invisible
   then makes the exit status 1.
5. Where the time goes: the derived ``EvseStatusResolved`` events of this run
   are read back from Kafka afterwards (nothing extra runs during the load);
   their ``recorded_at`` is the processor's clock when it decided. The view
   folds the PATCH (``LocationObjectPatched``) itself, so an update can be
   visible before the processor has decided; the figures say how often.
6. Ceilings (unless ``--skip-ceilings``): acknowledged Kafka produce rate
   (acks=all, idempotent, one at a time and ``-c`` in flight) to a throwaway
   topic; bulk upserts and point reads of location-sized documents in a
   throwaway MongoDB database; ``GET /healthz`` at the same concurrency.
7. A table on the terminal and every figure as JSON in ``--out``.

CPU time of every process started by ``make up`` (its process group, from
/proc) and of this benchmark is recorded per phase, which shows what the two
cores were busy with. All intervals come from ``time.perf_counter`` (one
monotonic clock for both threads); the processor's ``recorded_at`` is wall
clock and is mapped onto it through a pair of readings taken at start.

This is a measurement, not a test: nothing here judges the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import os
import platform
import random
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from pymongo import ASCENDING, MongoClient, ReplaceOne
from pymongo.collection import Collection
from pymongo.errors import PyMongoError
from rich.table import Table

from bench import ceilings as ceilings_mod
from bench.harness import (
    HTTP_TIMEOUT_S,
    REPO,
    CpuMeter,
    Doc,
    PlatformUnavailableError,
    api_base_url,
    cheap_async_library_detection,
    console,
    format_stamp,
    git_commit,
    location_body,
    new_http_clients,
    ocpi_status_code,
    preflight,
    rate,
    register_partner,
    run_and_write,
    run_concurrently,
    summarize,
    summarize_ms,
    utc_iso,
)
from bench.partner import COUNTRY_CODE, BenchPartner
from bench.rawhttp import RawConnection, RawHttpError
from ocpi_hub.settings import Settings, get_settings
from schemas.events.locations import location_key
from schemas.ocpi.common import sort_stamp
from schemas.topics import EVSE_STATUS, LOCATIONS

EVSES_PER_LOCATION = 4
# Live statuses only; PLANNED/REMOVED are life-cycle states with other rules.
STATUSES = ("AVAILABLE", "CHARGING", "RESERVED", "BLOCKED")
VISIBILITY_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 30.0
POLL_CHUNK = 250  # location keys per find() of the visibility poller
MONGO_CEILING_DOCS = 5000
MONGO_CEILING_BATCH = 1000
KAFKA_CEILING_PARTITIONS = 6
KAFKA_SEQUENTIAL_MAX = 2000

JSON_HEADERS = {"content-type": "application/json"}


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #


def parse_stamp_ms(value: Any) -> int | None:
    """An RFC 3339 UTC date-time (string or datetime) as epoch milliseconds."""
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
    else:
        return None
    return round(stamp.timestamp() * 1000)


def ts_of(ms: int) -> str:
    """The view's ``_ts`` (sortable ``last_updated``) of an epoch-ms stamp."""
    seconds, millis = divmod(ms, 1000)
    return sort_stamp(datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000))


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class Clock:
    """perf_counter readings mapped onto the wall clock (one pair, at start)."""

    perf0: float = field(default_factory=time.perf_counter)
    wall0: float = field(default_factory=time.time)

    def wall(self, perf: float) -> float:
        return self.wall0 + (perf - self.perf0)

    def perf(self, wall: float) -> float:
        return self.perf0 + (wall - self.wall0)


# --------------------------------------------------------------------------- #
# The updates
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Update:
    key: str  # MongoDB _id of the location document
    evse: str  # EVSE uid, folded
    slot: int  # EVSE number within the run (at most one request in flight per slot)
    status: str
    stamp_ms: int
    path: str
    body: bytes


def location_ids(run_id: str, locations: int) -> list[str]:
    return [f"BENCH-{run_id}-{loc:05d}" for loc in range(locations)]


def plan_updates(
    run_id: str, party_id: str, n: int, locations: int, evses_per_location: int, now_ms: int
) -> list[Update]:
    """Request ``i`` goes to EVSE ``i mod E``; consecutive requests hit
    different locations (so every partition gets work). Stamps increase with
    ``i`` and lie in the past; no stamp falls on a whole second, so the view
    stores exactly the string we send."""
    evse_count = locations * evses_per_location
    base_ms = (now_ms // 1000 - (n // 999 + 2)) * 1000
    updates = []
    for i in range(n):
        slot = i % evse_count
        loc, number = slot % locations, slot // locations
        location_id = f"BENCH-{run_id}-{loc:05d}"
        evse_uid = f"{location_id}-{number + 1}"
        stamp_ms = base_ms + (i // 999) * 1000 + 1 + i % 999
        status = STATUSES[(i // evse_count) % len(STATUSES)]
        updates.append(
            Update(
                key=location_key(COUNTRY_CODE, party_id, location_id),
                evse=evse_uid.upper(),
                slot=slot,
                status=status,
                stamp_ms=stamp_ms,
                path=f"/ocpi/emsp/2.2.1/locations/{COUNTRY_CODE}/{party_id}/{location_id}/{evse_uid}",
                body=orjson.dumps({"status": status, "last_updated": format_stamp(stamp_ms)}),
            )
        )
    return updates


# --------------------------------------------------------------------------- #
# Visibility: what the MongoDB view shows, polled from a thread
# --------------------------------------------------------------------------- #


def served_evses(doc: Doc) -> list[Doc]:
    """The EVSEs of the OCPI Location a view document serves (``location`` is
    null until the location has been PUT)."""
    served = doc.get("location") or {}
    return list(served.get("evses") or ())


# The view's fields the poller reads.
SERVED_EVSES = {"location.evses": 1}


class Tracker:
    """Updates sent but not yet seen in the view, shared by the load generator
    (asyncio, main thread) and the poller thread under one short lock."""

    def __init__(self, updates: Sequence[Update]) -> None:
        self.updates = updates
        self.visible_at: list[float | None] = [None] * len(updates)
        self.status_mismatches = 0
        self._lock = threading.Lock()
        # location key -> folded EVSE uid -> request indexes, oldest stamp first
        self._pending: dict[str, dict[str, deque[int]]] = {}
        self._is_pending = [False] * len(updates)
        self._oldest: list[tuple[int, int]] = []  # heap of (stamp, index); stale entries
        self._stamp_cache: dict[str, int | None] = {}
        # Trackers of other views of the same updates (MySQL), told the same.
        self.followers: list[Tracker] = []

    def register(self, i: int) -> None:
        for other in self.followers:
            other.register(i)
        u = self.updates[i]
        with self._lock:
            self._pending.setdefault(u.key, {}).setdefault(u.evse, deque()).append(i)
            self._is_pending[i] = True
            heapq.heappush(self._oldest, (u.stamp_ms, i))

    def withdraw(self, i: int) -> None:
        """A request that was not accepted: stop looking for it."""
        for other in self.followers:
            other.withdraw(i)
        u = self.updates[i]
        with self._lock:
            evses = self._pending.get(u.key, {})
            queue = evses.get(u.evse)
            if queue is not None and i in queue:
                queue.remove(i)
                self._is_pending[i] = False
                if not queue:
                    del evses[u.evse]
                if not evses:
                    self._pending.pop(u.key, None)

    def pending_keys(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def oldest_pending_stamp(self) -> int | None:
        with self._lock:
            while self._oldest and not self._is_pending[self._oldest[0][1]]:
                heapq.heappop(self._oldest)
            return self._oldest[0][0] if self._oldest else None

    def observe(self, docs: Sequence[Doc], seen_at: float) -> None:
        with self._lock:
            for doc in docs:
                evses = self._pending.get(doc["_id"])
                if evses is None:
                    continue
                for shown_evse in served_evses(doc):
                    uid = str(shown_evse.get("uid", "")).upper()
                    queue = evses.get(uid)
                    if not queue:
                        continue
                    raw = shown_evse.get("last_updated")
                    if isinstance(raw, str):
                        if raw not in self._stamp_cache:
                            self._stamp_cache[raw] = parse_stamp_ms(raw)
                        shown = self._stamp_cache[raw]
                    else:
                        shown = parse_stamp_ms(raw)
                    if shown is None:
                        continue
                    while queue and self.updates[queue[0]].stamp_ms <= shown:
                        i = queue.popleft()
                        self._is_pending[i] = False
                        self.visible_at[i] = seen_at
                        u = self.updates[i]
                        if u.stamp_ms == shown and shown_evse.get("status") != u.status:
                            self.status_mismatches += 1
                    if not queue:
                        del evses[uid]
                if not evses:
                    del self._pending[doc["_id"]]


class Poller(threading.Thread):
    """Polls the view for the updates still invisible, in one of two ways:

    ``range`` (used when the view's ``_ts``, the served location's
    ``last_updated`` as fixed-width sortable text, is what the probe expects):
    the documents whose ``_ts`` is at or after the oldest invisible update's
    stamp, through the view's ``(_ts, _id)`` index. A location that applied an
    update has a ``last_updated`` at least that update's stamp, so nothing is
    missed; the answer holds the locations updated since, a few per in-flight
    update.
    On SecantusDB that is about five times cheaper per document than
    ``_id: {$in: [...]}`` (250 documents: 12 ms against 64 ms on an idle
    server; the ceilings measure both).

    ``in``: ``_id: {$in: <pending location keys>}``, 250 keys per query; the
    fallback when the range is unusable (another stamp format) or catches
    more than it should (many other documents with recent stamps).

    Pacing: a round starts ``interval`` after the previous one started, but
    never sooner than the previous round's own duration after it ended, so
    the poller (and the server answering it) is busy at most half the time
    even when the view is slow; the visibility resolution is the period this
    yields, recorded in ``stats``. A visible time is the moment the find()
    that first showed the update returned: an upper bound, late by at most
    one period plus one query.
    """

    def __init__(
        self, coll: Collection[Doc], tracker: Tracker, interval_s: float, mode: str
    ) -> None:
        super().__init__(name="visibility-poller", daemon=True)
        self._coll = coll
        self._tracker = tracker
        self._interval_s = interval_s
        self._stop_event = threading.Event()
        self.mode = mode
        self.mode_changes: list[str] = []
        self.rounds = 0
        self.busy_s = 0.0
        self.keys_pending = 0
        self.docs_read = 0
        self.periods: list[float] = []
        self.round_durations: list[float] = []
        self.errors: Counter[str] = Counter()
        self.last_error: str | None = None

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def _round(self, keys: list[str]) -> int:
        if self.mode == "range":
            oldest = self._tracker.oldest_pending_stamp()
            if oldest is None:
                return 0
            docs = list(self._coll.find({"_ts": {"$gte": ts_of(oldest)}}, SERVED_EVSES))
            self._tracker.observe(docs, time.perf_counter())
            if len(docs) > max(4 * len(keys), 2000):
                self.mode = "in"
                self.mode_changes.append(
                    f"range -> in after {self.rounds} rounds: {len(docs)} documents "
                    f"for {len(keys)} pending locations"
                )
            return len(docs)
        read = 0
        for chunk in chunks(keys, POLL_CHUNK):
            docs = list(self._coll.find({"_id": {"$in": list(chunk)}}, SERVED_EVSES))
            self._tracker.observe(docs, time.perf_counter())
            read += len(docs)
        return read

    def run(self) -> None:
        last_start: float | None = None
        while not self._stop_event.is_set():
            keys = self._tracker.pending_keys()
            if not keys:
                last_start = None
                self._stop_event.wait(self._interval_s)
                continue
            started = time.perf_counter()
            if last_start is not None:
                self.periods.append(started - last_start)
            last_start = started
            try:
                self.docs_read += self._round(keys)
            except PyMongoError as exc:
                self.errors[type(exc).__name__] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self._stop_event.wait(0.5)
            took = time.perf_counter() - started
            self.rounds += 1
            self.busy_s += took
            self.keys_pending += len(keys)
            self.round_durations.append(took)
            self._stop_event.wait(max(self._interval_s - took, took))

    def stats(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "mode_changes": self.mode_changes,
            "interval_target_ms": round(self._interval_s * 1000, 1),
            "rounds": self.rounds,
            "mean_pending_locations_per_round": (
                round(self.keys_pending / self.rounds, 1) if self.rounds else 0
            ),
            "mean_documents_per_round": round(self.docs_read / self.rounds, 1)
            if self.rounds
            else 0,
            "round_duration_ms": summarize_ms(self.round_durations),
            "period_ms": summarize_ms(self.periods),
            "busy_s": round(self.busy_s, 2),
            "errors": dict(self.errors),
            "last_error": self.last_error,
        }


class MySqlPoller(threading.Thread):
    """Polls the MySQL ``evses`` rows of this run's locations (one range
    query on the primary key, ``evse_key`` starting with the run's location
    prefix) and marks an update visible when its EVSE's row shows its
    ``last_updated`` or a later one: the operational view of the same
    updates, with its own tracker."""

    def __init__(self, mysql_url: str, prefix: str, tracker: Tracker, interval_s: float) -> None:
        super().__init__(name="mysql-visibility-poller", daemon=True)
        from sqlalchemy import create_engine

        self._engine = create_engine(mysql_url, pool_pre_ping=True)
        self._prefix = prefix
        self._tracker = tracker
        self._interval_s = interval_s
        self._stop_event = threading.Event()
        self.rounds = 0
        self.periods: list[float] = []
        self.errors: Counter[str] = Counter()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self._engine.dispose()

    def _round(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT location_key, evse_uid, status, last_updated FROM evses "
            "WHERE evse_key LIKE :prefix"
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query, {"prefix": self._prefix + "%"}).all()
        seen_at = time.perf_counter()
        docs: dict[str, Doc] = {}
        for location_key_, evse_uid, status, last_updated in rows:
            doc = docs.setdefault(location_key_, {"_id": location_key_, "location": {"evses": []}})
            doc["location"]["evses"].append(
                {"uid": evse_uid, "status": status, "last_updated": last_updated}
            )
        self._tracker.observe(list(docs.values()), seen_at)

    def run(self) -> None:
        last_start: float | None = None
        while not self._stop_event.is_set():
            if not self._tracker.pending_keys():
                last_start = None
                self._stop_event.wait(self._interval_s)
                continue
            started = time.perf_counter()
            if last_start is not None:
                self.periods.append(started - last_start)
            last_start = started
            try:
                self._round()
            except Exception as exc:
                self.errors[type(exc).__name__] += 1
                self._stop_event.wait(0.5)
            took = time.perf_counter() - started
            self.rounds += 1
            self._stop_event.wait(max(self._interval_s - took, took))

    def stats(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "period_ms": summarize_ms(self.periods),
            "errors": dict(self.errors),
        }


# --------------------------------------------------------------------------- #
# Load generation
# --------------------------------------------------------------------------- #


@dataclass
class LoadResult:
    send: list[float]
    response: list[float]
    http_status: list[int | None]
    ocpi_status: list[int | None]
    failure: list[str | None]
    # Open loop only: when each update was due (perf_counter).
    scheduled: list[float] | None = None

    def accepted(self, i: int) -> bool:
        return self.http_status[i] == 200 and self.ocpi_status[i] == 1000


def bursts(visible_at: Sequence[float | None]) -> dict[str, Any]:
    """Updates first seen by the same poll form a burst. When the poll period
    is shorter than the projection's batch cycle (compare ``period_ms``),
    bursts are the projection's batches as MongoDB shows them: their sizes
    and the gaps between them are the batch size and cycle."""
    seen = Counter(v for v in visible_at if v is not None)
    times = sorted(seen)
    return {
        "count": len(times),
        "updates_per_burst": summarize([seen[t] for t in times]),
        "gap_ms": summarize_ms([b - a for a, b in itertools.pairwise(times)]),
    }


async def drive(
    clients: Sequence[RawConnection], tracker: Tracker, progress: Callable[[int], None]
) -> LoadResult:
    updates = tracker.updates
    n = len(updates)
    result = LoadResult(
        send=[0.0] * n,
        response=[0.0] * n,
        http_status=[None] * n,
        ocpi_status=[None] * n,
        failure=[None] * n,
    )
    # asyncio.Lock wakes waiters in FIFO order: per EVSE, requests go out in
    # stamp order, one at a time (only matters when EVSEs < concurrency).
    locks = [asyncio.Lock() for _ in range(max(u.slot for u in updates) + 1)]
    cursor = 0

    async def worker(client: RawConnection) -> None:
        nonlocal cursor
        while cursor < n:
            i = cursor
            cursor += 1
            u = updates[i]
            async with locks[u.slot]:
                tracker.register(i)
                result.send[i] = time.perf_counter()
                try:
                    response = await client.request("PATCH", u.path, u.body)
                except RawHttpError as exc:
                    result.response[i] = time.perf_counter()
                    result.failure[i] = type(exc).__name__
                    tracker.withdraw(i)
                    progress(i)
                    continue
                result.response[i] = time.perf_counter()
                result.http_status[i] = response.status_code
                result.ocpi_status[i] = response.ocpi_status_code()
                if not result.accepted(i):
                    tracker.withdraw(i)
                progress(i)

    await asyncio.gather(*(worker(client) for client in clients))
    return result


async def drive_at_rate(
    clients: Sequence[RawConnection],
    tracker: Tracker,
    rate_per_s: float,
    progress: Callable[[int], None],
) -> LoadResult:
    """Open loop: update ``i`` is due at ``i / rate`` seconds after the start,
    whatever the answers before it did (a closed loop would slow down with
    the platform and hide its latency). Each goes out on a free keep-alive
    connection of the pool; ``LoadResult.scheduled`` keeps when it was due,
    so a pool too small for the offered load shows as send lag."""
    updates = tracker.updates
    n = len(updates)
    result = LoadResult(
        send=[0.0] * n,
        response=[0.0] * n,
        http_status=[None] * n,
        ocpi_status=[None] * n,
        failure=[None] * n,
        scheduled=[0.0] * n,
    )
    free: asyncio.Queue[RawConnection] = asyncio.Queue()
    for client in clients:
        free.put_nowait(client)

    async def one(i: int) -> None:
        u = updates[i]
        client = await free.get()
        try:
            tracker.register(i)
            result.send[i] = time.perf_counter()
            try:
                response = await client.request("PATCH", u.path, u.body)
            except RawHttpError as exc:
                result.response[i] = time.perf_counter()
                result.failure[i] = type(exc).__name__
                tracker.withdraw(i)
                return
            result.response[i] = time.perf_counter()
            result.http_status[i] = response.status_code
            result.ocpi_status[i] = response.ocpi_status_code()
            if not result.accepted(i):
                tracker.withdraw(i)
        finally:
            free.put_nowait(client)
            progress(i)

    start = time.perf_counter() + 0.05
    scheduled = [start + i / rate_per_s for i in range(n)]
    result.scheduled = scheduled
    tasks = []
    for i in range(n):
        due = scheduled[i]
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return result


# --------------------------------------------------------------------------- #
# The probe and the setup
# --------------------------------------------------------------------------- #


def accepted_answer(response: httpx.Response) -> bool:
    return response.status_code in (200, 201) and ocpi_status_code(response) == 1000


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, period_s: float = 0.05
) -> bool:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if await check():
            return True
        await asyncio.sleep(period_s)
    return False


async def probe_pipeline(
    client: httpx.AsyncClient, coll: Collection[Doc], run_id: str, party_id: str, now_ms: int
) -> tuple[float, str]:
    """One location PUT, then one update of it end to end; returns the
    update's accept->visible seconds and the way the poller can find updates
    (see Poller): "range" when the view's ``_ts`` holds the stamp as expected
    and answers a range query on it. Also waits for the processor's
    resolution of the update (the view folds the PATCH itself, so a visible
    update alone does not prove the processor runs)."""
    location_id = f"BENCH-{run_id}-PROBE"
    path = f"/ocpi/emsp/2.2.1/locations/{COUNTRY_CODE}/{party_id}/{location_id}"
    key = location_key(COUNTRY_CODE, party_id, location_id)
    put_ms = (now_ms // 1000 - 2) * 1000
    stamp_ms = (now_ms // 1000 - 1) * 1000 + 1
    try:
        put = await client.put(path, json=location_body(location_id, party_id, 1, put_ms))
        if not accepted_answer(put):
            raise PlatformUnavailableError(
                f"the probe PUT was refused: HTTP {put.status_code} {put.text[:300]}"
            )

        async def stored() -> bool:
            doc = await asyncio.to_thread(coll.find_one, {"_id": key}, {"location.id": 1})
            return bool(doc and doc.get("location"))

        if not await wait_until(stored, PROBE_TIMEOUT_S):
            raise PlatformUnavailableError(
                f"a PUT location did not reach the MongoDB view within {PROBE_TIMEOUT_S:.0f} s: "
                "is `ocpi-hub projections` running? (`make status`; logs in data/logs/)"
            )
        body = {"status": "CHARGING", "last_updated": format_stamp(stamp_ms)}
        response = await client.patch(f"{path}/{location_id}-1", json=body)
    except httpx.HTTPError as exc:
        raise PlatformUnavailableError(f"the probe request failed ({type(exc).__name__})") from exc
    if not accepted_answer(response):
        raise PlatformUnavailableError(
            f"the probe PATCH was refused: HTTP {response.status_code} {response.text[:300]}"
        )
    accepted = time.perf_counter()
    took: float | None = None
    resolved = False
    uid = f"{location_id}-1".upper()
    while time.perf_counter() - accepted < PROBE_TIMEOUT_S:
        doc = await asyncio.to_thread(
            coll.find_one, {"_id": key}, {**SERVED_EVSES, "state.statuses": 1}
        )
        shown = served_evses(doc) if doc else []
        if took is None and any(parse_stamp_ms(e.get("last_updated")) == stamp_ms for e in shown):
            took = time.perf_counter() - accepted
        if doc:
            held = ((doc.get("state") or {}).get("statuses") or {}).get(uid) or {}
            resolved = parse_stamp_ms(held.get("last_updated")) == stamp_ms
        if took is not None and resolved:
            ranged = await asyncio.to_thread(
                coll.find_one, {"_id": key, "_ts": {"$gte": ts_of(stamp_ms)}}, {"_ts": 1}
            )
            exact = ranged is not None and ranged.get("_ts") == ts_of(stamp_ms)
            return took, "range" if exact else "in"
        await asyncio.sleep(0.05)
    if took is None:
        raise PlatformUnavailableError(
            f"an accepted update did not reach the MongoDB view within {PROBE_TIMEOUT_S:.0f} s: "
            "is `ocpi-hub projections` running? (`make status`; logs in data/logs/)"
        )
    raise PlatformUnavailableError(
        f"the processor did not resolve an accepted update within {PROBE_TIMEOUT_S:.0f} s: "
        "is `ocpi-hub processors` running? (`make status`; logs in data/logs/)"
    )


async def put_locations(
    clients: Sequence[httpx.AsyncClient],
    coll: Collection[Doc],
    run_id: str,
    party_id: str,
    count: int,
    stamp_ms: int,
) -> dict[str, Any]:
    """Setup, not measured: PUT every bench location with its EVSEs through
    the OCPI receiver, ``len(clients)`` in flight, and wait until the view
    serves them all. Raises PlatformUnavailableError when a PUT is refused or
    the view does not show them all within the visibility timeout."""
    ids = location_ids(run_id, count)
    refused: Counter[str] = Counter()

    async def one(i: int, w: int) -> None:
        path = f"/ocpi/emsp/2.2.1/locations/{COUNTRY_CODE}/{party_id}/{ids[i]}"
        body = location_body(ids[i], party_id, EVSES_PER_LOCATION, stamp_ms)
        response = await clients[w].put(path, content=orjson.dumps(body), headers=JSON_HEADERS)
        if not accepted_answer(response):
            refused[f"HTTP {response.status_code} / OCPI {ocpi_status_code(response)}"] += 1
            raise RuntimeError(response.text[:300])

    latencies, wall, failures = await run_concurrently(count, len(clients), one)
    if failures:
        raise PlatformUnavailableError(
            f"{sum(failures.values())} of {count} location PUTs failed: "
            + ", ".join(f"{k}: {v}" for k, v in {**failures, **refused}.items())
        )
    sent_all = time.perf_counter()
    keys = [location_key(COUNTRY_CODE, party_id, i) for i in ids]

    async def all_served() -> bool:
        def count_served() -> int:
            return sum(
                coll.count_documents({"_id": {"$in": list(chunk)}, "location": {"$ne": None}})
                for chunk in chunks(keys, POLL_CHUNK)
            )

        return await asyncio.to_thread(count_served) == len(keys)

    if not await wait_until(all_served, VISIBILITY_TIMEOUT_S, 0.25):
        raise PlatformUnavailableError(
            f"the {count} PUT locations were not all in the view {VISIBILITY_TIMEOUT_S:.0f} s "
            "after the last PUT"
        )
    return {
        "locations": count,
        "put_wall_s": round(wall, 3),
        "put_per_s": rate(count, wall),
        "put_latency_ms": summarize_ms(latencies),
        "all_visible_after_last_put_s": round(time.perf_counter() - sent_all, 3),
    }


# --------------------------------------------------------------------------- #
# Stage breakdown, read back from Kafka after the run
# --------------------------------------------------------------------------- #


async def topic_end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    parts = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    if not parts:
        raise PlatformUnavailableError(f"Kafka topic {topic!r} has no partitions")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(parts)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def read_since(
    bootstrap: str, topic: str, start: dict[int, int], key_prefix: bytes
) -> list[Any]:
    """Every message of ``topic`` from ``start`` to the current end whose key
    starts with ``key_prefix``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(start)]
        consumer.assign(parts)
        end = await consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, start[tp.partition])
        pending = {tp for tp in parts if end[tp] > start[tp.partition]}
        found: list[Any] = []
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=10_000)
            for tp, messages in batches.items():
                found.extend(
                    m
                    for m in messages
                    if m.offset < end[tp] and m.key is not None and m.key.startswith(key_prefix)
                )
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return found
    finally:
        await consumer.stop()


def event_times(
    messages: Sequence[Any], tracker: Tracker, clock: Clock
) -> tuple[dict[int, tuple[float, float]], int]:
    """Request index -> (``recorded_at``, Kafka record timestamp) of the
    run's events, both mapped onto perf_counter; and how many did not decode.
    ``recorded_at`` is wall clock with microseconds; the record timestamp is
    the producer's wall clock at send(), in milliseconds."""
    index = {(u.evse, u.stamp_ms): i for i, u in enumerate(tracker.updates)}
    times: dict[int, tuple[float, float]] = {}
    undecodable = 0
    for m in messages:
        try:
            event = orjson.loads(m.value)
            payload = event["payload"]
            stamp = parse_stamp_ms(payload["last_updated"])
            recorded = datetime.fromisoformat(event["recorded_at"]).timestamp()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            undecodable += 1
            continue
        i = index.get((str(payload.get("evse_uid", "")).upper(), stamp or -1))
        if i is not None and i not in times:
            times[i] = (clock.perf(recorded), clock.perf(m.timestamp / 1000))
    return times, undecodable


def stage_breakdown(
    reported: Sequence[Any],
    resolved: Sequence[Any],
    tracker: Tracker,
    load: LoadResult,
    clock: Clock,
) -> dict[str, Any]:
    """Where an update spends its time, from the clocks the events carry:
    the API stamps ``recorded_at`` on EvseStatusReported when the handler
    runs, the processor stamps it on EvseStatusResolved when it decides."""
    api, api_bad = event_times(reported, tracker, clock)
    proc, proc_bad = event_times(resolved, tracker, clock)
    stages: dict[str, list[float]] = {
        "send_to_api_handler": [],
        "api_handler_to_response": [],
        "api_handler_to_processor_decision": [],
        "response_to_processor_decision": [],
        "processor_decision_to_resolved_record": [],
        "resolved_record_to_visible": [],
        "processor_decision_to_visible": [],
    }
    for i in range(len(tracker.updates)):
        if not load.accepted(i):
            continue
        visible = tracker.visible_at[i]
        if i in api:
            handled, _ = api[i]
            stages["send_to_api_handler"].append(handled - load.send[i])
            stages["api_handler_to_response"].append(load.response[i] - handled)
            if i in proc:
                stages["api_handler_to_processor_decision"].append(proc[i][0] - handled)
        if i in proc:
            decided, record = proc[i]
            stages["response_to_processor_decision"].append(decided - load.response[i])
            stages["processor_decision_to_resolved_record"].append(record - decided)
            if visible is not None:
                stages["resolved_record_to_visible"].append(visible - record)
                stages["processor_decision_to_visible"].append(visible - decided)
    return {
        "reported_events_of_run": len(reported),
        "resolved_events_of_run": len(resolved),
        "matched_reported": len(api),
        "matched_resolved": len(proc),
        "undecodable": api_bad + proc_bad,
        # A negative response_to_processor_decision means the processor had
        # decided before our client finished reading the HTTP response.
        **{f"{name}_ms": summarize_ms(values) for name, values in stages.items()},
    }


# --------------------------------------------------------------------------- #
# Ceilings of the parts underneath
# --------------------------------------------------------------------------- #


def event_sized_payload(i: int) -> bytes:
    """A JSON document shaped like the LocationObjectPatched event of an EVSE
    status PATCH (what the API appends for each update)."""
    location_id = f"BENCH-CEILING-{i % 500:05d}"
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    stamp = format_stamp(round(time.time() * 1000))
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "aggregate_key": f"ZZ/BNC/{location_id}",
            "occurred_at": now,
            "recorded_at": now,
            "source": {"country_code": "ZZ", "party_id": "BNC"},
            "correlation_id": str(uuid.uuid4()),
            "causation_id": str(uuid.uuid4()),
            "event_type": "LocationObjectPatched",
            "schema_version": 1,
            "payload": {
                "country_code": "ZZ",
                "party_id": "BNC",
                "location_id": location_id,
                "evse_uid": f"{location_id}-{i % 4 + 1}",
                "connector_id": None,
                "patch": {"status": STATUSES[i % len(STATUSES)], "last_updated": stamp},
                "last_updated": stamp,
            },
        }
    )


async def kafka_ceiling(
    settings: Settings, run_id: str, n: int, concurrency: int
) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = settings.topic(f"bench.ceiling.{run_id}")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=topic,
                    num_partitions=KAFKA_CEILING_PARTITIONS,
                    replication_factor=settings.topic_replication_factor,
                )
            ]
        )
        # Measure only once every partition has a leader (a fresh topic's
        # first produces are otherwise refused and retried).
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline:
            (described,) = await admin.describe_topics([topic])
            parts = described.get("partitions") or []
            if len(parts) == KAFKA_CEILING_PARTITIONS and all(p["leader"] >= 0 for p in parts):
                break
            await asyncio.sleep(0.2)
        payloads = [event_sized_payload(i) for i in range(n)]
        keys = [f"ZZ/BNC/BENCH-CEILING-{i % 500:05d}".encode() for i in range(n)]
        headers = [("event_type", b"LocationObjectPatched"), ("schema_version", b"1")]
        results: dict[str, Any] = {
            "topic_partitions": KAFKA_CEILING_PARTITIONS,
            "message_bytes_mean": round(sum(map(len, payloads)) / n),
        }

        async def measure(linger_ms: int, count: int, in_flight: int) -> dict[str, Any]:
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=linger_ms,
            )
            await producer.start()
            try:
                # Warm-up: metadata, connections, a producer id, every partition.
                for partition in range(KAFKA_CEILING_PARTITIONS):
                    await producer.send_and_wait(topic, payloads[0], partition=partition)

                async def one(i: int, _: int) -> None:
                    await producer.send_and_wait(topic, payloads[i], key=keys[i], headers=headers)

                latencies, wall, failures = await run_concurrently(count, in_flight, one)
            finally:
                await producer.stop()
            return {
                "messages": count,
                "in_flight": in_flight,
                "linger_ms": linger_ms,
                "acked_per_s": rate(len(latencies), wall),
                "latency_ms": summarize_ms(latencies),
                "failures": dict(failures),
            }

        # One at a time: the round trip of a single acks=all produce.
        results["sequential"] = await measure(0, min(n, KAFKA_SEQUENTIAL_MAX), 1)
        # As the API produces: linger 2 ms (producers/log.py), C awaiting at once.
        results["concurrent"] = await measure(2, n, concurrency)
        return results
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
        await admin.close()


def location_sized_doc(run_id: str, i: int, status: str, offset: int) -> Doc:
    """A document shaped like the live view's (projections/mongo/locations.py):
    the folded state beside the served Location, with 4 EVSEs."""
    location_id = f"BENCH-{run_id}-{i:05d}"
    stamp_ms = 1_767_268_800_000 + i * 7 + 1
    served = location_body(location_id, "BNC", EVSES_PER_LOCATION, stamp_ms)
    for shown in served["evses"]:
        shown["status"] = status
    statuses = {
        shown["uid"].upper(): {"status": status, "last_updated": shown["last_updated"]}
        for shown in served["evses"]
    }
    return {
        "_id": f"ZZ/BNC/{location_id}",
        "country_code": "ZZ",
        "party_id": "BNC",
        "state": {"asserted": served, "statuses": statuses},
        "location": served,
        "_ts": ts_of(stamp_ms),
        "_positions": {
            f"ocpi_locations_v1@{i % 6}": offset,
            f"ocpi_evse-status_v1@{i % 6}": offset,
        },
    }


def mongo_ceiling(client: MongoClient[Doc], settings: Settings, run_id: str) -> dict[str, Any]:
    db_name = f"bench_{run_id}"
    if db_name == settings.mongo_db:
        raise RuntimeError("refusing to use the live database for a throwaway")
    coll: Collection[Doc] = client[db_name]["locations"]
    results: dict[str, Any] = {
        "database": db_name,
        "documents": MONGO_CEILING_DOCS,
        "batch": MONGO_CEILING_BATCH,
        "doc_bytes": len(orjson.dumps(location_sized_doc(run_id, 0, "AVAILABLE", 0))),
    }
    try:
        # The live view's indexes (LocationViewWriter.prepare): every write
        # maintains them, and the poller's range query reads the first.
        keyset = [("_ts", ASCENDING), ("_id", ASCENDING)]
        coll.create_index([("country_code", ASCENDING), ("party_id", ASCENDING), *keyset])
        coll.create_index(keyset)

        def upserts(status: str, offset: int) -> dict[str, Any]:
            docs = [
                location_sized_doc(run_id, i, status, offset) for i in range(MONGO_CEILING_DOCS)
            ]
            batch_times = []
            started = time.perf_counter()
            for start in range(0, len(docs), MONGO_CEILING_BATCH):
                ops = [
                    ReplaceOne({"_id": d["_id"]}, d, upsert=True)
                    for d in docs[start : start + MONGO_CEILING_BATCH]
                ]
                t = time.perf_counter()
                coll.bulk_write(ops, ordered=False)
                batch_times.append(time.perf_counter() - t)
            wall = time.perf_counter() - started
            return {"docs_per_s": rate(len(docs), wall), "batch_ms": summarize_ms(batch_times)}

        results["bulk_upsert_insert"] = upserts("AVAILABLE", 1)  # none exist yet
        results["bulk_upsert_replace"] = upserts("CHARGING", 2)  # every one exists
        ids = [f"ZZ/BNC/BENCH-{run_id}-{i:05d}" for i in range(MONGO_CEILING_DOCS)]
        rng = random.Random(7)
        point = []
        for _ in range(1000):
            t = time.perf_counter()
            coll.find_one({"_id": rng.choice(ids)})
            point.append(time.perf_counter() - t)
        results["find_one_by_id_ms"] = summarize_ms(point)
        # The projection writer's read before each batch (and the poller's
        # fallback): _id $in of 250 keys.
        many = []
        for _ in range(30):
            t = time.perf_counter()
            list(coll.find({"_id": {"$in": rng.sample(ids, POLL_CHUNK)}}, SERVED_EVSES))
            many.append(time.perf_counter() - t)
        results[f"find_in_{POLL_CHUNK}_ids_ms"] = summarize_ms(many)
        # The poller's range query: 250 documents by _ts.
        stamps = sorted(d["_ts"] for d in coll.find({}, {"_ts": 1}))
        ranged = []
        for _ in range(30):
            k = rng.randrange(len(stamps) - POLL_CHUNK)
            bounds = {"$gte": stamps[k], "$lt": stamps[k + POLL_CHUNK]}
            t = time.perf_counter()
            list(coll.find({"_ts": bounds}, SERVED_EVSES))
            ranged.append(time.perf_counter() - t)
        results[f"find_range_{POLL_CHUNK}_docs_ms"] = summarize_ms(ranged)
        return results
    finally:
        client.drop_database(db_name)


async def http_floor(clients: Sequence[httpx.AsyncClient], n: int) -> dict[str, Any]:
    async def one(_: int, w: int) -> None:
        response = await clients[w].get("/healthz")
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")

    latencies, wall, failures = await run_concurrently(n, len(clients), one)
    return {
        "requests": n,
        "concurrency": len(clients),
        "ok_per_s": rate(len(latencies), wall),
        "latency_ms": summarize_ms(latencies),
        "failures": dict(failures),
    }


# --------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------- #


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.evse_status",
        description="EVSE status PATCH throughput and accept->visible latency of the running "
        "platform, and the raw ceilings of Kafka, the document store and the HTTP stack.",
    )
    parser.add_argument("-n", "--requests", type=int, default=5000, help="updates to send")
    parser.add_argument("-c", "--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument(
        "--locations",
        type=int,
        default=500,
        help=f"locations the updates spread over ({EVSES_PER_LOCATION} EVSEs each)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON report (default data/bench/evse_status-<UTC>.json)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: offer this many updates per second (with --duration) instead of "
        "keeping -c in flight; -c is then the connection pool",
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="open loop: seconds of load (with --rate)"
    )
    parser.add_argument(
        "--wrk-s",
        type=int,
        default=15,
        help="seconds of the closed-loop wrk runs (the API and the FastAPI ceilings)",
    )
    parser.add_argument("--skip-ceilings", action="store_true", help="only the pipeline run")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=15.0,
        help="target period of the visibility poller (it backs off when its rounds take longer)",
    )
    args = parser.parse_args(argv)
    if args.rate is not None:
        if args.rate <= 0 or args.duration <= 0:
            parser.error("--rate and --duration must be positive")
        args.requests = max(1, round(args.rate * args.duration))
    for name in ("requests", "concurrency", "locations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.poll_ms <= 0:
        parser.error("--poll-ms must be positive")
    return args


async def run(args: argparse.Namespace, started_wall: float) -> tuple[dict[str, Any], int]:
    settings = get_settings()
    run_id = uuid.uuid4().hex[:8]
    clock = Clock()
    base_url = api_base_url(settings)
    report: dict[str, Any] = {
        "benchmark": "evse_status",
        "run_id": run_id,
        "started_at": utc_iso(started_wall),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "locations": args.locations,
            "evses_per_location": EVSES_PER_LOCATION,
            "poll_ms": args.poll_ms,
            "offered_rate_per_s": args.rate,
            "load": "open loop" if args.rate else "closed loop",
            "skip_ceilings": args.skip_ceilings,
            "http_client": f"load: {args.concurrency} x bench.rawhttp.RawConnection (one "
            "keep-alive HTTP/1.1 connection each, requests prepared as bytes); setup, "
            "probe and floors: httpx.AsyncClient",
            "api": base_url,
            "kafka": settings.kafka_bootstrap,
            "mongo_db": settings.mongo_db,
            "topic_prefix": settings.topic_prefix,
            "party": f"{COUNTRY_CODE}/B<2 hex>, fresh per run",
            "location_ids": f"BENCH-{run_id}-<n>",
        },
    }
    mongo: MongoClient[Doc] = MongoClient(
        settings.mongo_url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000
    )
    view: Collection[Doc] = mongo[settings.mongo_db]["locations"]
    clients = new_http_clients(base_url, args.concurrency)
    client = clients[0]
    meter = CpuMeter(REPO / "data" / "run")
    report["parameters"]["cpu_accounted_processes"] = meter.names
    exit_code = 0
    partnership = contextlib.ExitStack()
    try:
        console.print(f"[bold]EVSE status benchmark[/] run {run_id}: pre-flight against {base_url}")
        await preflight(client, mongo, settings)
        partner = await register_partner(partnership, run_id)
        party_id = partner.party_id
        report["parameters"]["party"] = f"{partner.country_code}/{party_id}"
        report["parameters"]["partner_id"] = partner.partner_id
        for c in clients:
            c.headers["Authorization"] = partner.authorization
        probe_s, poll_mode = await probe_pipeline(
            client, view, run_id, party_id, round(time.time() * 1000)
        )
        report["probe_accept_to_visible_ms"] = round(probe_s * 1000, 1)

        updates = plan_updates(
            run_id,
            party_id,
            args.requests,
            args.locations,
            EVSES_PER_LOCATION,
            round(time.time() * 1000),
        )
        # Every location exists before the first PATCH, stamped before it.
        console.print(
            f"setup: PUT {args.locations} locations x {EVSES_PER_LOCATION} EVSEs "
            f"as {COUNTRY_CODE}/{party_id} (not measured)"
        )
        report["setup"] = await put_locations(
            clients,
            view,
            run_id,
            party_id,
            args.locations,
            (min(u.stamp_ms for u in updates) // 1000 - 1) * 1000,
        )
        reported_topic = settings.topic(LOCATIONS.name)
        resolved_topic = settings.topic(EVSE_STATUS.name)
        start_offsets = {
            t: await topic_end_offsets(settings.kafka_bootstrap, t)
            for t in (reported_topic, resolved_topic)
        }
        # Open the whole pool before the clock starts.
        await run_concurrently(args.concurrency * 2, args.concurrency, _healthz(clients))
        load_conns = [
            RawConnection(
                base_url, {**JSON_HEADERS, "Authorization": partner.authorization}, HTTP_TIMEOUT_S
            )
            for _ in range(args.concurrency)
        ]
        await asyncio.gather(*(c.request("GET", "/healthz") for c in load_conns))

        tracker = Tracker(updates)
        poller = Poller(view, tracker, args.poll_ms / 1000, poll_mode)
        rows = Tracker(updates)
        tracker.followers.append(rows)
        row_poller = MySqlPoller(
            settings.mysql_url,
            location_key(COUNTRY_CODE, party_id, f"BENCH-{run_id}-"),
            rows,
            max(args.poll_ms, 25) / 1000,
        )
        done_count = 0

        def progress(_: int) -> None:
            nonlocal done_count
            done_count += 1

        async def ticker() -> None:
            while True:
                await asyncio.sleep(5)
                console.print(f"  {done_count}/{len(updates)} responses", style="dim")

        if args.rate:
            console.print(
                f"load: {args.requests} updates offered at {args.rate:g}/s (open loop, "
                f"{args.concurrency} connections), {args.locations} locations x "
                f"{EVSES_PER_LOCATION} EVSEs"
            )
        else:
            console.print(
                f"load: {args.requests} updates, {args.concurrency} in flight, "
                f"{args.locations} locations x {EVSES_PER_LOCATION} EVSEs"
            )
        cpu_start = meter.snapshot()
        poller.start()
        row_poller.start()
        tick = asyncio.create_task(ticker())
        try:
            if args.rate:
                load = await drive_at_rate(load_conns, tracker, args.rate, progress)
            else:
                load = await drive(load_conns, tracker, progress)
        finally:
            tick.cancel()
            await asyncio.gather(*(c.aclose() for c in load_conns))
        cpu_load_end = meter.snapshot()
        last_response = max(load.response)
        accepted = [i for i in range(len(updates)) if load.accepted(i)]

        def invisible() -> list[int]:
            return [
                i for i in accepted if tracker.visible_at[i] is None or rows.visible_at[i] is None
            ]

        console.print(
            f"waiting for {len(invisible())} updates to become visible in MongoDB and MySQL"
        )
        deadline = last_response + VISIBILITY_TIMEOUT_S
        next_note = time.perf_counter() + 10
        while invisible() and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
            if time.perf_counter() >= next_note:
                console.print(f"  still invisible: {len(invisible())}", style="dim")
                next_note += 10
        poller.stop()
        row_poller.stop()
        cpu_end = meter.snapshot()
        missing = [i for i in accepted if tracker.visible_at[i] is None]
        missing_rows = [i for i in accepted if rows.visible_at[i] is None]

        first_send = min(load.send)
        wall = last_response - first_send
        errors: Counter[str] = Counter()
        for i in range(len(updates)):
            if load.failure[i] is not None:
                errors[f"transport: {load.failure[i]}"] += 1
            elif not load.accepted(i):
                errors[f"HTTP {load.http_status[i]} / OCPI {load.ocpi_status[i]}"] += 1
        visible_lat = [
            max(0.0, v - load.response[i])
            for i in accepted
            if (v := tracker.visible_at[i]) is not None
        ]
        before_response = sum(
            1 for i in accepted if (v := tracker.visible_at[i]) is not None and v < load.response[i]
        )
        report["pipeline"] = {
            "sent": len(updates),
            "accepted": len(accepted),
            "wall_s": round(wall, 3),
            "accepted_per_s": rate(len(accepted), wall),
            "http_latency_ms": summarize_ms(
                [load.response[i] - load.send[i] for i in range(len(updates))]
            ),
            "errors": dict(errors),
            "accept_to_visible_ms": summarize_ms(visible_lat),
            "send_to_visible_ms": summarize_ms(
                [v - load.send[i] for i in accepted if (v := tracker.visible_at[i]) is not None]
            ),
            "all_visible_after_last_response_s": (
                round(
                    max(v for i in accepted if (v := tracker.visible_at[i]) is not None)
                    - last_response,
                    3,
                )
                if visible_lat
                else None
            ),
            "never_visible": len(missing),
            "never_visible_examples": [
                f"{updates[i].key} {updates[i].evse} {format_stamp(updates[i].stamp_ms)}"
                for i in missing[:5]
            ],
            "visible_before_http_response": before_response,
            "mysql_accept_to_visible_ms": summarize_ms(
                [
                    max(0.0, v - load.response[i])
                    for i in accepted
                    if (v := rows.visible_at[i]) is not None
                ]
            ),
            "mysql_never_visible": len(missing_rows),
            "mysql_status_mismatches": rows.status_mismatches,
            "mysql_poller": row_poller.stats(),
            "send_lag_ms": (
                summarize_ms([load.send[i] - load.scheduled[i] for i in range(len(updates))])
                if load.scheduled is not None
                else None
            ),
            "visibility_bursts": bursts(tracker.visible_at),
            "status_mismatches": tracker.status_mismatches,
            "visibility_poller": poller.stats(),
            "first_send_at": utc_iso(clock.wall(first_send)),
            "last_response_at": utc_iso(clock.wall(last_response)),
        }
        report["cpu"] = {
            "load": CpuMeter.between(cpu_start, cpu_load_end),
            "load_and_drain": CpuMeter.between(cpu_start, cpu_end),
        }
        if accepted:
            drained = report["cpu"]["load_and_drain"]
            drained["ms_per_accepted_update"] = {
                k: round(v / len(accepted) * 1000, 2) for k, v in drained["cpu_s"].items()
            }
        if missing or missing_rows or not accepted:
            exit_code = 1

        try:
            ours = location_key(COUNTRY_CODE, party_id, f"BENCH-{run_id}-").encode()
            reported = await read_since(
                settings.kafka_bootstrap, reported_topic, start_offsets[reported_topic], ours
            )
            resolved = await read_since(
                settings.kafka_bootstrap, resolved_topic, start_offsets[resolved_topic], ours
            )
            report["stages"] = stage_breakdown(reported, resolved, tracker, load, clock)
        except Exception as exc:
            report["stages"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}

        report["api_wrk"] = await api_throughput(args, base_url, partner, run_id, meter)
        if not args.skip_ceilings:
            report["ceilings"] = await ceilings(args, settings, run_id, clients, mongo, meter)
            fastapi_kafka = report["ceilings"].get("fastapi_kafka", {}).get("accepted_per_s")
            ours = report["api_wrk"].get("accepted_per_s")
            if fastapi_kafka and ours is not None:
                report["api_share_of_fastapi_kafka"] = round(ours / fastapi_kafka, 3)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
        await asyncio.to_thread(partnership.close)
        mongo.close()
    finished = time.time()
    report["finished_at"] = utc_iso(finished)
    report["duration_s"] = round(finished - started_wall, 1)
    return report, exit_code


def _healthz(clients: Sequence[httpx.AsyncClient]) -> Callable[[int, int], Awaitable[None]]:
    async def one(_: int, w: int) -> None:
        await clients[w].get("/healthz")

    return one


async def api_throughput(
    args: argparse.Namespace, base_url: str, partner: BenchPartner, run_id: str, meter: CpuMeter
) -> dict[str, Any]:
    """The API at its limit: wrk keeps 32 PATCHes in flight for ``--wrk-s``
    seconds over this run's EVSEs (closed loop; the same generator as the
    FastAPI ceilings, so the two figures compare). Stamps start 20 s ago
    and advance 1 ms per request, so they are later than the load's."""
    if not ceilings_mod.wrk_available():
        return {"error": "wrk not installed (apt-get install wrk)"}
    console.print(f"throughput: wrk against the API for {args.wrk_s} s")
    before = meter.snapshot()
    try:
        result = await asyncio.to_thread(
            ceilings_mod.wrk_patches,
            base_url,
            country_code=partner.country_code,
            party_id=partner.party_id,
            location_prefix=f"BENCH-{run_id}",
            locations=args.locations,
            evses_per_location=EVSES_PER_LOCATION,
            authorization=partner.authorization,
            duration_s=args.wrk_s,
            base_s=int(time.time()) - 20,
        )
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    cpu = CpuMeter.between(before, meter.snapshot())
    result["cpu"] = cpu
    if result.get("accepted"):
        result["cpu_ms_per_accepted"] = {
            k: round(v / result["accepted"] * 1000, 2) for k, v in cpu["cpu_s"].items()
        }
    return result


async def fastapi_ceiling(
    args: argparse.Namespace, settings: Settings, run_id: str, *, kafka: bool
) -> dict[str, Any]:
    """The ceiling app (bench/ceiling_app.py) under the same wrk load; with
    ``kafka``, one acknowledged write per request to a throwaway topic."""
    if not ceilings_mod.wrk_available():
        return {"error": "wrk not installed (apt-get install wrk)"}
    topic = settings.topic(f"bench.fastapi.{run_id}")
    if kafka:
        await create_throwaway_topic(settings, topic)
    try:
        with ceilings_mod.ceiling_app(
            settings.kafka_bootstrap if kafka else None, topic if kafka else None
        ) as url:
            return await asyncio.to_thread(
                ceilings_mod.wrk_patches,
                url,
                country_code=COUNTRY_CODE,
                party_id="BNC",
                location_prefix=f"BENCH-{run_id}",
                locations=args.locations,
                evses_per_location=EVSES_PER_LOCATION,
                duration_s=args.wrk_s,
                base_s=int(time.time()) - 20,
            )
    finally:
        if kafka:
            await delete_topic(settings, topic)


async def create_throwaway_topic(settings: Settings, topic: str) -> None:
    """A topic like the locations one, every partition led before use."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=topic,
                    num_partitions=KAFKA_CEILING_PARTITIONS,
                    replication_factor=settings.topic_replication_factor,
                )
            ]
        )
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline:
            (described,) = await admin.describe_topics([topic])
            parts = described.get("partitions") or []
            if len(parts) == KAFKA_CEILING_PARTITIONS and all(p["leader"] >= 0 for p in parts):
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def delete_topic(settings: Settings, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
    finally:
        await admin.close()


async def ceilings(
    args: argparse.Namespace,
    settings: Settings,
    run_id: str,
    clients: Sequence[httpx.AsyncClient],
    mongo: MongoClient[Doc],
    meter: CpuMeter,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        ("http_healthz", lambda: http_floor(clients, args.requests)),
        (
            "kafka_produce",
            lambda: kafka_ceiling(settings, run_id, args.requests, args.concurrency),
        ),
        ("mongo", lambda: asyncio.to_thread(mongo_ceiling, mongo, settings, run_id)),
        ("fastapi_bare", lambda: fastapi_ceiling(args, settings, run_id, kafka=False)),
        ("fastapi_kafka", lambda: fastapi_ceiling(args, settings, run_id, kafka=True)),
    ]
    for name, step in steps:
        console.print(f"ceiling: {name}")
        before = meter.snapshot()
        try:
            result = await step()
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        result["cpu"] = CpuMeter.between(before, meter.snapshot())
        out[name] = result
    return out


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


STAGE_LABELS = (
    ("send_to_api_handler", "send -> API handler"),
    ("api_handler_to_response", "API handler -> response (Kafka ack)"),
    ("api_handler_to_processor_decision", "API handler -> processor decided"),
    ("processor_decision_to_visible", "processor decided -> visible"),
)


def _lat(s: dict[str, Any]) -> str:
    if not s.get("count"):
        return "-"
    return f"{s['p50']:.1f} / {s['p95']:.1f} / {s['p99']:.1f} / {s['max']:.1f}"


def render(report: dict[str, Any]) -> None:
    p = report["parameters"]
    m = report["machine"]
    console.print(
        f"\n[bold]EVSE status benchmark[/]  run {report['run_id']}  commit {report['git_commit']}"
        f"  {m['cpu_count']} cores  Python {m['python']}\n"
        f"{p['requests']} updates, {p['concurrency']} in flight, {p['locations']} locations x "
        f"{p['evses_per_location']} EVSEs; took {report['duration_s']} s"
    )
    setup = report.get("setup")
    if setup:
        console.print(
            f"setup (not measured): {setup['locations']} location PUTs at {setup['put_per_s']}/s "
            f"as {p['party']}, all in the view {setup['all_visible_after_last_put_s']} s "
            "after the last"
        )
    pipe = report.get("pipeline")
    if pipe:
        table = Table(title="Pipeline: PATCH -> Kafka -> processor -> projection -> MongoDB")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("accepted / sent", f"{pipe['accepted']} / {pipe['sent']}")
        table.add_row("accepted per s (first send to last response)", f"{pipe['accepted_per_s']}")
        table.add_row("HTTP latency ms p50/p95/p99/max", _lat(pipe["http_latency_ms"]))
        table.add_row("accept -> visible ms p50/p95/p99/max", _lat(pipe["accept_to_visible_ms"]))
        table.add_row(
            "all visible, s after last response", f"{pipe['all_visible_after_last_response_s']}"
        )
        never = pipe["never_visible"]
        table.add_row("never visible", f"[bold red]{never}[/]" if never else "0")
        table.add_row("errors", ", ".join(f"{k}: {v}" for k, v in pipe["errors"].items()) or "none")
        poll = pipe["visibility_poller"]
        table.add_row(
            f"visibility resolution: poll period ms p50/p95 ({poll['mode']} polls)",
            f"{poll['period_ms'].get('p50', '-')} / {poll['period_ms'].get('p95', '-')}",
        )
        stages = report.get("stages", {})
        if "error" in stages:
            table.add_row("stage breakdown", f"unavailable: {stages['error']}")
        else:
            for name, label in STAGE_LABELS:
                if stages.get(f"{name}_ms", {}).get("count"):
                    table.add_row(f"  {label} ms p50/p95/p99/max", _lat(stages[f"{name}_ms"]))
        console.print(table)

    cpu = report.get("cpu", {}).get("load_and_drain")
    if cpu:
        busy = cpu["machine_busy"]
        table = Table(
            title=f"CPU during load + drain: {cpu['wall_s']} s, machine "
            + (f"{busy * 100:.0f}% busy" if busy is not None else "busy unknown")
        )
        table.add_column("process (group)")
        table.add_column("CPU s", justify="right")
        table.add_column("cores", justify="right")
        per = cpu.get("ms_per_accepted_update", {})
        table.add_column("CPU ms per accepted update", justify="right")
        for name, seconds in cpu["cpu_s"].items():
            table.add_row(
                name,
                f"{seconds:.2f}",
                f"{cpu['cores'][name]:.2f}",
                f"{per[name]:.2f}" if name in per else "-",
            )
        console.print(table)

    ceil = report.get("ceilings")
    if ceil:
        table = Table(title="Ceilings of the parts underneath")
        table.add_column("part")
        table.add_column("rate", justify="right")
        table.add_column("latency ms p50/p95/p99/max", justify="right")
        http = ceil.get("http_healthz", {})
        if "error" in http:
            table.add_row("HTTP GET /healthz", "error", http["error"])
        else:
            table.add_row(
                f"HTTP GET /healthz, {http['concurrency']} in flight",
                f"{http['ok_per_s']}/s",
                _lat(http["latency_ms"]),
            )
        kafka = ceil.get("kafka_produce", {})
        if "error" in kafka:
            table.add_row("Kafka produce", "error", kafka["error"])
        else:
            for mode in ("sequential", "concurrent"):
                k = kafka[mode]
                table.add_row(
                    f"Kafka acks=all idempotent, {k['in_flight']} in flight, "
                    f"linger {k['linger_ms']} ms, {kafka['message_bytes_mean']} B",
                    f"{k['acked_per_s']}/s",
                    _lat(k["latency_ms"]),
                )
        mg = ceil.get("mongo", {})
        if "error" in mg:
            table.add_row("MongoDB", "error", mg["error"])
        else:
            for kind in ("insert", "replace"):
                b = mg[f"bulk_upsert_{kind}"]
                table.add_row(
                    f"MongoDB bulk upsert ({kind}), batches of {mg['batch']}, {mg['doc_bytes']} B",
                    f"{b['docs_per_s']} docs/s",
                    f"batch {_lat(b['batch_ms'])}",
                )
            table.add_row("MongoDB find_one by _id", "", _lat(mg["find_one_by_id_ms"]))
            table.add_row(
                f"MongoDB find _id $in {POLL_CHUNK} keys (projection's read)",
                "",
                _lat(mg[f"find_in_{POLL_CHUNK}_ids_ms"]),
            )
            table.add_row(
                f"MongoDB find {POLL_CHUNK} docs by _ts range (poller)",
                "",
                _lat(mg[f"find_range_{POLL_CHUNK}_docs_ms"]),
            )
        console.print(table)


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return REPO / "data" / "bench" / f"evse_status-{stamp}.json"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cheap_async_library_detection()
    out: Path = args.out or default_out()
    report, code = run_and_write(run, args, out, render)
    if report is None:
        return code
    pipe = report.get("pipeline", {})
    never = pipe.get("never_visible", 0)
    if not pipe.get("accepted"):
        console.print("[bold red]the API accepted none of the updates[/] (errors in the report)")
    if never:
        console.print(
            f"[bold red]{never} accepted update(s) never became visible in MongoDB within "
            f"{VISIBILITY_TIMEOUT_S:.0f} s[/] (examples in the report: never_visible_examples)"
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
