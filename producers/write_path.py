"""The one write path (docs/adr/0022).

Every OCPI receiver, ops write and pull sync records its events here. A
write names an aggregate (a slice and a key) and a pure decision:

1. **hold** the aggregate: a per-key lock in the decision store, shared by
   every API process, which hands over the aggregate's state as of its
   latest event in the log (never a view);
2. **decide**: the slice's pure function, given that state, returns the
   events to record and the answer, or raises ``RefusedError``;
3. **append** the events to Kafka (acks=all, idempotent producer) on the
   key's partition;
4. **fold** them into the state with the slice's own ``evolve`` and store
   it with the events' log position, which releases the aggregate.

Only then is the answer returned. Projections being down does not stop a
write, and a PUT followed at once by a PATCH always finds the object.

A slice may name its aggregates otherwise too (``Slice.lookups``, e.g. a
partner by the hash of its token): the names are kept in the same commit as
the state, ``find`` looks them up, and a write of such a slice answers once
the processes caching finds have dropped what it changed (docs/adr/0024).

When a holder disappears between its append and its commit (a crash, a
timeout whose outcome Kafka never told us), the next holder cannot know
from the store whether the event is in the log. It reads the key's
partition from shortly before the lost holder took the lock and folds
whatever it finds of that key (``LogHistory``), so its decision is again
made on everything the log holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

import structlog
from aiokafka.partitioner import murmur2

from producers.log import (
    AppendRefusedError,
    EventLog,
    EventTooLargeError,
    NotSentError,
    Position,
)
from schemas.events import Actor, EventMeta, Party, new_event_id
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import TopicSpec

log = structlog.get_logger(__name__)

S = TypeVar("S")
R = TypeVar("R")


# --- what a slice brings ------------------------------------------------------


@dataclass(frozen=True)
class Slice(Generic[S]):
    """An OCPI module's aggregate, as the write path sees it: where its
    events go, and how its state is folded and stored."""

    name: str  # names the state in the decision store
    topic: TopicSpec
    evolve: Callable[[S | None, Any], S | None]
    dump: Callable[[S], bytes]
    load: Callable[[bytes], S]
    # Other names an aggregate is found by (``WritePath.find``), each unique
    # in the slice: e.g. the hash of the token a partner presents. The store
    # keeps them in the same commit as the state (docs/adr/0024).
    lookups: Callable[[S], Sequence[str]] | None = None

    def fold(self, state: S | None, events: Sequence[Any]) -> S | None:
        for event in events:
            state = self.evolve(state, event)
        return state

    def fold_recorded(
        self, state: S | None, events: Sequence[tuple[Any, Any]], *, stored: bool = False
    ) -> S | None:
        """Fold events read back from the log (``(position, event)``). One that
        cannot be folded (a value no reader can hold, recorded before the edge
        refused such values) is skipped and logged, as the views set it aside
        (docs/adr/0028): one bad event must not stop every write of its slice.
        With ``stored``, a state that cannot be dumped for the decision store
        counts as not folded too."""
        for position, event in events:
            try:
                after = self.evolve(state, event)
                if stored and after is not None:
                    self.dump(after)
            except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
                log.error(
                    "write_path_event_skipped",
                    slice=self.name,
                    position=str(position),
                    event_type=getattr(event, "event_type", None),
                    error_type=type(exc).__name__,
                )
                continue
            state = after
        return state


@dataclass(frozen=True)
class Decision(Generic[R]):
    """What a decision records, and what the caller is told."""

    events: Sequence[EventMeta]
    answer: R


@dataclass(frozen=True)
class Origin:
    """Who writes, and the request's correlation id."""

    source: Party
    correlation_id: str


class RefusedError(Exception):
    """The write is not recorded; answer with this OCPI status and HTTP
    status. The HTTP status is what the ops API answers; on ``/ocpi`` it
    passes through the one rule of docs/adr/0039 §2
    (``api.errors.ocpi_http_status``), so a slice shared by both may ask
    for a REST-style 404 or 409."""

    def __init__(self, status: OcpiStatus, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http_status = http_status


def recorded_now(
    key: str, now: datetime, origin: Origin, *, occurred: datetime | None = None
) -> dict[str, object]:
    """The envelope fields of an event decided and recorded at ``now`` by
    ``origin`` (a fresh event id); ``occurred`` when the fact happened
    earlier than it was recorded (a charger's own timestamp)."""
    return {
        "event_id": new_event_id(),
        "aggregate_key": key,
        "occurred_at": occurred or now,
        "recorded_at": now,
        "source": origin.source,
        "correlation_id": origin.correlation_id,
    }


def conflict(message: str) -> RefusedError:
    """A refusal for a write the object's state does not allow (HTTP 409)."""
    return RefusedError(OcpiStatus.CLIENT_ERROR, message, 409)


def unknown(what: str) -> RefusedError:
    """A refusal for a write to an object we do not hold (HTTP 404)."""
    return RefusedError(OcpiStatus.INVALID_PARAMETERS, f"no {what}", 404)


class NotRecordedError(Exception):
    """Nothing was recorded (the events never reached Kafka); the sender is
    to retry."""


class OutcomeUnknownError(Exception):
    """Kafka was handed the events but did not confirm them, and reading the
    log back did not find them (yet): they may be recorded. Sending the same
    request again is safe: an identical write is decided as the same change
    (docs/adr/0027)."""


def _not_recorded(exc: Exception) -> Exception:
    """The answer to an append that certainly recorded nothing: a refusal
    when sending it again cannot succeed (too large, unholdable), else
    ``NotRecordedError`` (retry)."""
    if isinstance(exc, EventTooLargeError):
        return RefusedError(OcpiStatus.INVALID_PARAMETERS, str(exc), http_status=413)
    if isinstance(exc, AppendRefusedError):
        return RefusedError(OcpiStatus.INVALID_PARAMETERS, str(exc))
    return NotRecordedError("the log did not take the write; nothing was recorded")


def _log_append_failure(exc: Exception, **bound: str) -> None:
    log.warning("append_failed", cause=type(exc).__name__, error=str(exc)[:300], **bound)


class UnavailableError(Exception):
    """The aggregate could not be held in time (another writer holds it, the
    decision store is unreachable or being rebuilt); retry."""


# --- the decision store port ----------------------------------------------------


class Hold(StrEnum):
    OK = "OK"  # the state is as the last holder left it
    RECOVER = "RECOVER"  # the last holder left without committing: read the log
    BUSY = "BUSY"  # someone else holds it
    NOT_READY = "NOT_READY"  # the store holds no states (empty, or being rebuilt)


@dataclass(frozen=True)
class Stored:
    """An aggregate's state as stored: ``raw`` is None when the caller's
    cached copy of this ``version`` is current (or there is no state)."""

    version: str
    raw: bytes | None
    partition: int | None
    offset: int | None


@dataclass(frozen=True)
class Claim:
    outcome: Hold
    stored: Stored | None = None
    # RECOVER: when the lost holder took the aggregate (ms since the epoch).
    since_ms: int | None = None


class DecisionStore(Protocol):
    """Per-aggregate state and lock, shared by every API process."""

    async def claim(
        self, slice_name: str, key: str, token: str, *, now_ms: int, ttl_ms: int, have: str | None
    ) -> Claim:
        """Hold the aggregate for ``ttl_ms`` under ``token``."""
        ...

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
        """Store the new state and release; False if the hold was lost.
        ``names`` (a slice with lookups): the state's names from now on;
        they replace the ones of the previous state in the same step, and
        the commit is announced to the processes that cache finds."""
        ...

    async def release(self, slice_name: str, key: str, token: str) -> None:
        """Release without change (nothing was appended)."""
        ...

    async def abandon(self, slice_name: str, key: str, token: str, *, until_ms: int) -> None:
        """Nobody knows whether the append reached the log: keep the
        aggregate held until ``until_ms``, then the next holder recovers."""
        ...

    async def peek(self, slice_name: str, key: str, *, have: str | None) -> Stored | None:
        """The stored state without holding it (None: no state); ``raw`` is
        left out when it is the version the caller ``have``s."""
        ...

    async def position(self, slice_name: str, key: str) -> tuple[int, int] | None:
        """Partition and offset of the last event folded into the state."""
        ...

    async def keys(self, slice_name: str) -> list[str]:
        """The keys of every aggregate of the slice that has a state (any
        order): what a decision over all of them (a month's invoices) walks."""
        ...

    async def ready(self, slice_name: str) -> bool:
        """Whether the store holds this slice's states (it was rebuilt)."""
        ...

    async def lead_rebuild(self, slice_name: str, token: str, ttl_ms: int) -> bool:
        """Become (or, with the same token, stay) the one process rebuilding
        the slice's states, for ``ttl_ms``."""
        ...

    async def rebuilt(
        self,
        slice_name: str,
        states: dict[str, tuple[bytes, int, int]],
        names: dict[str, Sequence[str]] | None = None,
    ) -> None:
        """Replace every state of the slice (key -> (raw, partition, offset))
        and, for a slice with lookups, every name (key -> names), mark the
        slice ready and end the rebuild."""
        ...

    async def find(self, slice_name: str, name: str) -> tuple[str, Stored] | None:
        """The key a name belongs to and that key's stored state (its
        ``raw`` always included), or None."""
        ...

    async def settle(self, slice_name: str, *, timeout_s: float) -> int:
        """Wait until every process caching finds of the slice has dropped
        what the commits so far changed; how many did not confirm in time."""
        ...


class LogHistory(Protocol):
    """Reading back what the log holds of one key, and whole topics."""

    async def partitions(self, topic: TopicSpec) -> int: ...

    async def events_of(
        self, topic: TopicSpec, partition: int, key: str, *, since_ms: int, after: int | None
    ) -> list[tuple[int, EventMeta]]:
        """The events of ``key`` on one partition, written at or after
        ``since_ms`` (record timestamp) and past offset ``after``, in order,
        with their offsets."""
        ...

    def scan(self, topic: TopicSpec) -> AsyncIterator[tuple[int, int, EventMeta]]:
        """Every event of the topic from offset zero to its current end:
        (partition, offset, event)."""
        ...


def partition_for(key: str, partitions: int) -> int:
    """The partition of a key, as Kafka's default partitioner (and so
    aiokafka's and Faust's producers) places it."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def _now_ms() -> int:
    return int(time.time() * 1000)


def _names(slice_: Slice[Any], state: Any) -> list[str] | None:
    """The names a state is found by; None for a slice without lookups."""
    if slice_.lookups is None:
        return None
    return list(slice_.lookups(state)) if state is not None else []


# --- who asks -------------------------------------------------------------------------

# The operator on whose behalf this request or command writes (an account,
# an API key, the command line), set once per request by the ops access
# check (api/ops/access.py) and per command by the CLI. Every event the
# write path appends meanwhile carries it (docs/adr/0031): a route or a
# decision cannot forget it, and the pure decisions need not know it.
_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("actor", default=None)


def act_as(actor: Actor | None) -> contextvars.Token[Actor | None]:
    """From now on in this context, writes are ``actor``'s."""
    return _ACTOR.set(actor)


def reset_actor(token: contextvars.Token[Actor | None]) -> None:
    """Back to the actor before ``act_as`` gave ``token``."""
    _ACTOR.reset(token)


@contextlib.contextmanager
def acting_as(actor: Actor | None) -> Iterator[None]:
    """Writes inside the block are ``actor``'s (None: no operator's)."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def current_actor() -> Actor | None:
    return _ACTOR.get()


def _stamped(events: Sequence[EventMeta]) -> Sequence[EventMeta]:
    actor = _ACTOR.get()
    if actor is None:
        return events
    return [e if e.actor is not None else e.model_copy(update={"actor": actor}) for e in events]


# --- the write path --------------------------------------------------------------


@dataclass(frozen=True)
class _Held:
    token: str
    state: Any
    partition: int | None
    offset: int | None
    # The state was recovered from the log and differs from the stored one:
    # it is committed even when the decision records nothing.
    recovered: bool = False


@dataclass
class _Cached:
    version: str
    state: Any


@dataclass(frozen=True)
class Timing:
    # How long a write may wait to hold its aggregate.
    hold_timeout_s: float = 5.0
    # How long a hold lasts if its holder never comes back; above the
    # longest append (the produce timeout), so a live holder never loses it.
    hold_ttl_s: float = 30.0
    # After an append whose outcome is unknown, how long the aggregate stays
    # held so that a send still in flight lands before anyone reads the log.
    fate_window_s: float = 12.0
    # Record timestamps vs. the clock of the lost holder: read this much earlier.
    clock_margin_s: float = 30.0
    # States kept decoded in this process (a claim that finds the same
    # version skips the transfer).
    cache_size: int = 20_000
    # A rebuilding process renews its lead this often; others take over
    # when it has not for rebuild_lead_s.
    rebuild_lead_s: float = 60.0
    # After a commit of a slice with lookups, how long the write waits for
    # the processes caching finds to confirm they dropped what it changed.
    settle_timeout_s: float = 1.0


@dataclass
class WritePath:
    """State, decide, append, answer: the one way an aggregate is written."""

    event_log: EventLog
    store: DecisionStore
    history: LogHistory
    timing: Timing = field(default_factory=Timing)
    clock_ms: Callable[[], int] = _now_ms

    def __post_init__(self) -> None:
        self._cache: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._local: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._partitions: dict[str, int] = {}
        self._ready: set[str] = set()
        self._rebuilding: dict[str, asyncio.Task[None]] = {}

    async def write(
        self, slice_: Slice[S], key: str, decide: Callable[[S | None], Decision[R]]
    ) -> R:
        """Decide on the aggregate's state and record the decision's events;
        the decision's answer once Kafka acknowledged them. Raises what
        ``decide`` raises (``RefusedError``, ``ValidationError``: nothing is
        recorded), ``RefusedError`` for events Kafka cannot take (too large:
        HTTP 413), ``NotRecordedError`` (certainly not recorded),
        ``OutcomeUnknownError`` (may be recorded: Kafka did not confirm and
        the log, read back, does not show it yet) or ``UnavailableError``."""
        async with self._queued(slice_.name, key):
            held = await self._hold(slice_, key)
            try:
                decision = decide(held.state)
            except BaseException:
                await self._leave(slice_, key, held)
                raise
            if not decision.events:
                await self._leave(slice_, key, held)
                return decision.answer
            strays = [e.aggregate_key for e in decision.events if e.aggregate_key != key]
            if strays:
                await self._leave(slice_, key, held)
                raise AssertionError(f"a decision on {key!r} wrote other aggregates: {strays}")
            events = _stamped(decision.events)
            partition = held.partition
            if partition is None:
                partition = partition_for(key, await self._partition_count(slice_.topic))
            sent_ms = self.clock_ms()
            try:
                positions = await self.event_log.append(events, partition=partition)
            except (AppendRefusedError, NotSentError) as exc:
                # Certainly not in the log: the aggregate is as it was.
                await self._leave(slice_, key, held)
                _log_append_failure(exc, slice=slice_.name, key=key)
                raise _not_recorded(exc) from exc
            except Exception as exc:
                _log_append_failure(exc, slice=slice_.name, key=key)
                found = await self._resolve(slice_, key, held, partition, sent_ms, events)
                if found is None:
                    await self._abandon(slice_, key, held.token)
                    raise OutcomeUnknownError(
                        "the log did not confirm the write in time: it may have been "
                        "recorded; a retry of the same request is safe"
                    ) from exc
                log.info("append_resolved", slice=slice_.name, key=key, offset=found)
                state = slice_.fold(held.state, events)
                await self._commit(slice_, key, held.token, state, partition, found)
                return decision.answer
            last = positions[-1]
            state = slice_.fold(held.state, events)
            await self._commit(slice_, key, held.token, state, last.partition, last.offset)
            return decision.answer

    async def record(self, events: Sequence[EventMeta]) -> list[Position]:
        """Append facts that no decision depends on (a charger's report, an
        authorization we decided): acknowledged, or ``NotRecordedError``."""
        try:
            return await self.event_log.append(_stamped(events))
        except (AppendRefusedError, NotSentError) as exc:
            _log_append_failure(exc)
            raise _not_recorded(exc) from exc
        except Exception as exc:
            # No aggregate is held here to resolve against: the sender is
            # told the fact may be recorded, not that it is not.
            _log_append_failure(exc)
            raise OutcomeUnknownError(
                "the log did not confirm the write in time: it may have been "
                "recorded; a retry of the same request is safe"
            ) from exc

    async def state(self, slice_: Slice[S], key: str) -> S | None:
        """The aggregate's state as of its last committed write, without
        holding it: what a decision about *another* aggregate may consult
        (a session's token, a CDR's tariff)."""
        await self._require_ready(slice_)
        cached = self._cache.get((slice_.name, key))
        try:
            stored = await self.store.peek(
                slice_.name, key, have=cached.version if cached else None
            )
        except Exception as exc:
            raise UnavailableError("the decision store is unreachable") from exc
        if stored is None:
            return None
        return self._decoded(slice_, key, stored, cached)

    async def find(self, slice_: Slice[S], name: str) -> S | None:
        """The state of the aggregate that one of the slice's ``lookups``
        names ``name``, as of its last committed write, without holding it
        (a partner by the hash of the token it presents)."""
        await self._require_ready(slice_)
        try:
            found = await self.store.find(slice_.name, name)
        except Exception as exc:
            raise UnavailableError("the decision store is unreachable") from exc
        if found is None:
            return None
        key, stored = found
        cached = self._cache.get((slice_.name, key))
        if cached is not None and cached.version == stored.version:
            state: S | None = cached.state
            return state
        return self._decoded(slice_, key, stored, None)

    async def keys(self, slice_: Slice[Any]) -> list[str]:
        """Every aggregate of the slice with a state, as of the last commits,
        sorted: the log's whole list, never a view's."""
        await self._require_ready(slice_)
        try:
            found = await self.store.keys(slice_.name)
        except Exception as exc:
            raise UnavailableError("the decision store is unreachable") from exc
        return sorted(found)

    def forget(self, slice_: Slice[Any], key: str) -> None:
        """Drop this process's copy of the aggregate's state (a walk over many
        large aggregates, such as a month's close, need not keep them all);
        the next write or read fetches it from the store again."""
        self._forget(slice_.name, key)

    async def position(self, slice_: Slice[Any], key: str) -> tuple[int, int] | None:
        """Where in the log the aggregate's last committed event is: a read
        of a view waits until the view has applied it (read-your-writes)."""
        try:
            return await self.store.position(slice_.name, key)
        except Exception as exc:
            raise UnavailableError("the decision store is unreachable") from exc

    # -- holding ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _queued(self, slice_name: str, key: str) -> AsyncIterator[None]:
        """Writers of one aggregate in this process wait their turn here,
        not by polling the store."""
        lock = self._local.get((slice_name, key))
        if lock is None:
            lock = asyncio.Lock()
            self._local[(slice_name, key)] = lock
        async with lock:
            yield

    async def _hold(self, slice_: Slice[Any], key: str) -> _Held:
        await self._require_ready(slice_)
        t = self.timing
        token = uuid.uuid4().hex
        deadline = time.monotonic() + t.hold_timeout_s
        delay = 0.002
        while True:
            cached = self._cache.get((slice_.name, key))
            try:
                claim = await self.store.claim(
                    slice_.name,
                    key,
                    token,
                    now_ms=self.clock_ms(),
                    ttl_ms=int(t.hold_ttl_s * 1000),
                    have=cached.version if cached else None,
                )
            except Exception as exc:
                raise UnavailableError("the decision store is unreachable") from exc
            if claim.outcome is Hold.NOT_READY:
                self._ready.discard(slice_.name)
                self._rebuild_soon(slice_)
                raise UnavailableError(f"the {slice_.name} decision state is being rebuilt")
            if claim.outcome is Hold.BUSY:
                if time.monotonic() + delay > deadline:
                    raise UnavailableError(f"this {slice_.name} object is being written; retry")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            assert claim.stored is not None
            stored = claim.stored
            held = _Held(
                token, self._decoded(slice_, key, stored, cached), stored.partition, stored.offset
            )
            if claim.outcome is Hold.RECOVER:
                return await self._recover(slice_, key, held, claim.since_ms)
            return held

    async def _recover(
        self, slice_: Slice[Any], key: str, held: _Held, since_ms: int | None
    ) -> _Held:
        """The previous holder left without committing: fold what the log
        holds of the key since it took the aggregate."""
        partition = held.partition
        if partition is None:
            partition = partition_for(key, await self._partition_count(slice_.topic))
        since = (since_ms or 0) - int(self.timing.clock_margin_s * 1000)
        try:
            found = await self.history.events_of(
                slice_.topic, partition, key, since_ms=since, after=held.offset
            )
        except Exception as exc:
            # Still unknown: the next writer tries again.
            await self._abandon(slice_, key, held.token, now=True)
            raise UnavailableError("the log could not be read back; retry") from exc
        log.info(
            "write_recovered", slice=slice_.name, key=key, events=len(found), partition=partition
        )
        if not found:
            return held
        state = slice_.fold_recorded(held.state, found, stored=True)
        return _Held(held.token, state, partition, found[-1][0], recovered=True)

    async def _resolve(
        self,
        slice_: Slice[Any],
        key: str,
        held: _Held,
        partition: int,
        sent_ms: int,
        events: Sequence[EventMeta],
    ) -> int | None:
        """After an append of unknown outcome, read the key's partition back:
        the offset of the decision's last event when every one of them is in
        the log (then the write is recorded), else None (it may still land:
        the caller keeps the aggregate held for the fate window)."""
        since = sent_ms - int(self.timing.clock_margin_s * 1000)
        try:
            found = await self.history.events_of(
                slice_.topic, partition, key, since_ms=since, after=held.offset
            )
        except Exception as exc:
            log.warning("append_unresolved", slice=slice_.name, key=key, error=type(exc).__name__)
            return None
        wanted = [event.event_id for event in events]
        # Only the holder writes the key, so what follows the held offset is
        # this decision's events, in order, or nothing of them.
        seen = [(offset, event.event_id) for offset, event in found]
        if [event_id for _, event_id in seen] != wanted:
            if seen:
                log.warning("append_partly_found", slice=slice_.name, key=key, found=len(seen))
            return None
        return seen[-1][0]

    # -- leaving ---------------------------------------------------------------

    async def _commit(
        self,
        slice_: Slice[Any],
        key: str,
        token: str,
        state: Any,
        partition: int,
        offset: int,
    ) -> None:
        version = uuid.uuid4().hex[:16]
        raw = slice_.dump(state) if state is not None else None
        names = _names(slice_, state)
        try:
            kept = await self.store.commit(
                slice_.name,
                key,
                token,
                version=version,
                raw=raw,
                partition=partition,
                offset=offset,
                names=names,
            )
        except Exception as exc:
            # The events are in the log; the hold expires and the next
            # holder folds them from there. The write itself succeeded.
            log.warning("commit_failed", slice=slice_.name, key=key, error=type(exc).__name__)
            self._forget(slice_.name, key)
            return
        if not kept:
            log.warning("hold_lost", slice=slice_.name, key=key)
            self._forget(slice_.name, key)
            return
        self._remember(slice_.name, key, version, state)
        if names is not None:
            await self._settle(slice_)

    async def _settle(self, slice_: Slice[Any]) -> None:
        """The commit told the processes caching finds to drop them; answer
        once they confirmed, so that a request the caller sends next finds
        the new names and not the old ones, in any process (docs/adr/0024).
        One that does not confirm in time stops using its cache by itself."""
        try:
            late = await self.store.settle(slice_.name, timeout_s=self.timing.settle_timeout_s)
        except Exception as exc:
            log.warning("settle_failed", slice=slice_.name, error=type(exc).__name__)
            return
        if late:
            log.warning("settle_incomplete", slice=slice_.name, processes=late)

    async def _leave(self, slice_: Slice[Any], key: str, held: _Held) -> None:
        """Nothing recorded: give the aggregate back as it was, or as the
        log showed it when it was recovered."""
        if held.recovered:
            assert held.partition is not None and held.offset is not None
            await self._commit(slice_, key, held.token, held.state, held.partition, held.offset)
        else:
            await self._release(slice_, key, held.token)

    async def _release(self, slice_: Slice[Any], key: str, token: str) -> None:
        with contextlib.suppress(Exception):  # the hold expires by itself
            await self.store.release(slice_.name, key, token)

    async def _abandon(
        self, slice_: Slice[Any], key: str, token: str, *, now: bool = False
    ) -> None:
        self._forget(slice_.name, key)
        until = self.clock_ms() + (0 if now else int(self.timing.fate_window_s * 1000))
        with contextlib.suppress(Exception):  # the hold expires by itself
            await self.store.abandon(slice_.name, key, token, until_ms=until)

    # -- cache and readiness ----------------------------------------------------

    def _decoded(
        self, slice_: Slice[S], key: str, stored: Stored, cached: _Cached | None
    ) -> S | None:
        """The state a claim or peek returned; ``raw`` is None when there is
        no state, or when ``cached`` (the copy we offered) is current."""
        if not stored.version:
            return None
        if stored.raw is None:
            if cached is None or cached.version != stored.version:
                raise AssertionError("the store withheld a state we do not have")
            state: S | None = cached.state
            return state
        loaded = slice_.load(stored.raw)
        self._remember(slice_.name, key, stored.version, loaded)
        return loaded

    def _remember(self, slice_name: str, key: str, version: str, state: Any) -> None:
        self._cache[(slice_name, key)] = _Cached(version, state)
        self._cache.move_to_end((slice_name, key))
        while len(self._cache) > self.timing.cache_size:
            self._cache.popitem(last=False)

    def _forget(self, slice_name: str, key: str) -> None:
        self._cache.pop((slice_name, key), None)

    async def _partition_count(self, topic: TopicSpec) -> int:
        count = self._partitions.get(topic.name)
        if count is None:
            count = await self.history.partitions(topic)
            self._partitions[topic.name] = count
        return count

    async def _require_ready(self, slice_: Slice[Any]) -> None:
        if slice_.name in self._ready:
            return
        try:
            ready = await self.store.ready(slice_.name)
        except Exception as exc:
            raise UnavailableError("the decision store is unreachable") from exc
        if not ready:
            self._rebuild_soon(slice_)
            raise UnavailableError(f"the {slice_.name} decision state is being rebuilt")
        self._ready.add(slice_.name)

    def _rebuild_soon(self, slice_: Slice[Any]) -> None:
        """The store lost the slice's states (or never had them): have them
        rebuilt once, in the background, while writes are answered "retry"."""
        task = self._rebuilding.get(slice_.name)
        if task is None or task.done():
            self._rebuilding[slice_.name] = asyncio.create_task(self._ensure(slice_))

    async def ensure_ready(self, slices: Sequence[Slice[Any]]) -> None:
        """Make sure the store holds every slice's states, rebuilding them
        from the log where it does not (one process rebuilds, the others
        wait for it). Run before a process takes writes."""
        await asyncio.gather(*(self._ensure(slice_) for slice_ in slices))

    async def _ensure(self, slice_: Slice[Any]) -> None:
        token = uuid.uuid4().hex
        lead_ms = int(self.timing.rebuild_lead_s * 1000)
        while not await self.store.ready(slice_.name):
            if await self.store.lead_rebuild(slice_.name, token, lead_ms):
                await self.rebuild(slice_, lead=token)
                break
            await asyncio.sleep(0.2)
        self._ready.add(slice_.name)

    # -- rebuilding ------------------------------------------------------------

    async def rebuild(self, slice_: Slice[Any], *, lead: str) -> int:
        """Fold the slice's whole topic into fresh states (the store lost
        them, or never had them); return how many events were read. Only the
        holder of the rebuild ``lead`` may call it; nobody writes the slice
        meanwhile (claims find it not ready)."""
        states: dict[str, tuple[Any, int, int]] = {}
        count = 0
        lead_ms = int(self.timing.rebuild_lead_s * 1000)
        renewed = time.monotonic()
        async for partition, offset, event in self.history.scan(slice_.topic):
            count += 1
            if time.monotonic() - renewed > self.timing.rebuild_lead_s / 3:
                await self.store.lead_rebuild(slice_.name, lead, lead_ms)
                renewed = time.monotonic()
            key = event.aggregate_key
            held = states.get(key)
            before = held[0] if held else None
            after = slice_.fold_recorded(before, [(f"{partition}@{offset}", event)])
            states[key] = (after, partition, offset)
        dumped: dict[str, tuple[bytes, int, int]] = {}
        for key, (state, partition, offset) in states.items():
            if state is None:
                continue
            try:
                dumped[key] = (slice_.dump(state), partition, offset)
            except (TypeError, ValueError, OverflowError) as exc:
                # A value the store cannot hold came in with one of the key's
                # events: fold the key again, event by event, without it.
                log.error(
                    "write_path_state_refolded", slice=slice_.name, error_type=type(exc).__name__
                )
                found = await self.history.events_of(
                    slice_.topic, partition, key, since_ms=0, after=None
                )
                refolded = slice_.fold_recorded(None, found, stored=True)
                if refolded is not None:
                    states[key] = (refolded, partition, offset)
                    dumped[key] = (slice_.dump(refolded), partition, offset)
        names: dict[str, Sequence[str]] | None = None
        if slice_.lookups is not None:
            names = {
                key: _names(slice_, state) or ()
                for key, (state, _, _) in states.items()
                if key in dumped
            }
        await self.store.rebuilt(slice_.name, dumped, names)
        for ident in [i for i in self._cache if i[0] == slice_.name]:
            del self._cache[ident]
        self._ready.add(slice_.name)
        log.info("decision_state_rebuilt", slice=slice_.name, events=count, aggregates=len(dumped))
        return count
