"""The one write path (producers/write_path.py) on the in-memory log and
decision store: every decision sees the state of every earlier write of its
aggregate, across processes and across a holder that vanished."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from producers.decision_store import InMemoryDecisionStore
from producers.log import Fault, InMemoryEventLog, InMemoryLogHistory, Position
from producers.write_path import (
    Decision,
    NotRecordedError,
    OutcomeUnknownError,
    RefusedError,
    Slice,
    Timing,
    UnavailableError,
    WritePath,
)
from schemas.events import EventMeta, EvseStatusReported, Party, new_event_id
from schemas.events.locations import EvseStatusReportedPayload
from schemas.ocpi.locations import EvseStatus
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import LOCATIONS

KEY = "NL/ABC/LOC1"
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _count(state: int | None, event: Any) -> int:
    return (state or 0) + 1


COUNTER: Slice[int] = Slice("counter", LOCATIONS, _count, lambda n: str(n).encode(), int)


def report(key: str = KEY) -> EvseStatusReported:
    cc, pid, loc = key.split("/")
    return EvseStatusReported(
        event_id=new_event_id(),
        aggregate_key=key,
        occurred_at=AT,
        recorded_at=AT,
        source=Party(country_code=cc, party_id=pid),
        correlation_id="c",
        payload=EvseStatusReportedPayload(
            country_code=cc,
            party_id=pid,
            location_id=loc,
            evse_uid="E1",
            status=EvseStatus.AVAILABLE,
            last_updated=AT,
        ),
    )


class Clock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


def path(
    log: InMemoryEventLog, store: InMemoryDecisionStore, clock: Clock | None = None, **timing: Any
) -> WritePath:
    return WritePath(
        log, store, InMemoryLogHistory(log), Timing(**timing), clock_ms=clock or Clock()
    )


def one_more(seen: list[int | None]) -> Any:
    def decide(state: int | None) -> Decision[int | None]:
        seen.append(state)
        return Decision([report()], state)

    return decide


async def test_each_write_is_decided_on_the_state_of_the_ones_before() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    writes = path(log, store)
    seen: list[int | None] = []
    for _ in range(3):
        await writes.write(COUNTER, KEY, one_more(seen))
    assert seen == [None, 1, 2]
    assert await writes.state(COUNTER, KEY) == 3
    assert await writes.position(COUNTER, KEY) is not None


async def test_concurrent_writes_in_one_process_never_share_a_state() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    writes = path(log, store)
    seen: list[int | None] = []
    await asyncio.gather(*(writes.write(COUNTER, KEY, one_more(seen)) for _ in range(50)))
    assert sorted(s or 0 for s in seen) == list(range(50))
    assert len(log.events) == 50 and await writes.state(COUNTER, KEY) == 50


class SlowLog(InMemoryEventLog):
    """Acknowledges after a pause, so that writers overlap."""

    async def append(
        self, events: Sequence[EventMeta], *, partition: int | None = None
    ) -> list[Position]:
        await asyncio.sleep(0.001)
        return await super().append(events, partition=partition)


async def test_two_processes_on_one_store_never_decide_on_the_same_state() -> None:
    log, store = SlowLog(), InMemoryDecisionStore()
    first, second = path(log, store), path(log, store)
    seen: list[int | None] = []
    await asyncio.gather(
        *(w.write(COUNTER, KEY, one_more(seen)) for _ in range(20) for w in (first, second))
    )
    assert sorted(s or 0 for s in seen) == list(range(40))
    assert await first.state(COUNTER, KEY) == await second.state(COUNTER, KEY) == 40


async def test_a_refusal_records_nothing_and_frees_the_aggregate() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    writes = path(log, store)

    def refuse(state: int | None) -> Decision[None]:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, "no")

    with pytest.raises(RefusedError):
        await writes.write(COUNTER, KEY, refuse)
    assert log.events == []
    seen: list[int | None] = []
    await writes.write(COUNTER, KEY, one_more(seen))
    assert seen == [None]


async def test_a_decision_may_not_write_another_aggregate() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    writes = path(log, store)
    with pytest.raises(AssertionError, match="other aggregates"):
        await writes.write(COUNTER, KEY, lambda s: Decision([report("NL/ABC/LOC2")], None))
    assert log.events == []


class LandsThenFails(InMemoryEventLog):
    """The broker has the events, but the answer never reaches us."""

    def __init__(self, lands: bool) -> None:
        super().__init__()
        self.lands = lands
        self.broken = True

    async def append(
        self, events: Sequence[EventMeta], *, partition: int | None = None
    ) -> list[Position]:
        if not self.broken:
            return await super().append(events, partition=partition)
        if self.lands:
            await super().append(events, partition=partition)
        raise TimeoutError("no answer from the broker")


async def test_an_append_whose_answer_was_lost_is_found_in_the_log_at_once() -> None:
    log, store, clock = LandsThenFails(lands=True), InMemoryDecisionStore(), Clock()
    writes = path(log, store, clock, hold_timeout_s=0.05, fate_window_s=20)
    seen: list[int | None] = []
    # The broker kept the event: read back, the write is recorded and answered.
    await writes.write(COUNTER, KEY, one_more(seen))
    log.broken = False
    await writes.write(COUNTER, KEY, one_more(seen))
    assert seen == [None, 1]
    assert await writes.state(COUNTER, KEY) == 2 == len(log.events)


async def test_an_append_of_unknown_fate_holds_the_aggregate_then_is_read_back() -> None:
    log, store, clock = LandsThenFails(lands=False), InMemoryDecisionStore(), Clock()
    writes = path(log, store, clock, hold_timeout_s=0.05, fate_window_s=20)
    seen: list[int | None] = []
    with pytest.raises(OutcomeUnknownError):
        await writes.write(COUNTER, KEY, one_more(seen))
    log.broken = False
    # Until the send's fate is surely known, nobody decides on the aggregate.
    with pytest.raises(UnavailableError):
        await writes.write(COUNTER, KEY, one_more(seen))
    clock.ms += 20_001
    await writes.write(COUNTER, KEY, one_more(seen))
    assert seen == [None, None]
    assert await writes.state(COUNTER, KEY) == 1 == len(log.events)


async def test_an_append_refused_before_sending_leaves_the_aggregate_free() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    writes = path(log, store)
    seen: list[int | None] = []
    log.faults.append(Fault.NOT_SENT)
    with pytest.raises(NotRecordedError):
        await writes.write(COUNTER, KEY, one_more(seen))
    # No fate window: nothing can land later.
    await writes.write(COUNTER, KEY, one_more(seen))
    assert seen == [None, None]
    assert len(log.events) == 1


async def test_a_holder_that_vanished_is_recovered_from_the_log_after_its_hold() -> None:
    log, store, clock = InMemoryEventLog(), InMemoryDecisionStore(), Clock()
    writes = path(log, store, clock, hold_timeout_s=0.05, hold_ttl_s=30)
    seen: list[int | None] = []
    await writes.write(COUNTER, KEY, one_more(seen))
    # Another process holds the aggregate, appends, and dies before committing.
    await store.claim("counter", KEY, "dead", now_ms=clock.ms, ttl_ms=30_000, have=None)
    await log.append([report()])
    with pytest.raises(UnavailableError):
        await writes.write(COUNTER, KEY, one_more(seen))
    clock.ms += 30_001

    def refuse(state: int | None) -> Decision[None]:
        seen.append(state)
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, "no")

    # What was recovered is kept even when the decision records nothing.
    with pytest.raises(RefusedError):
        await writes.write(COUNTER, KEY, refuse)
    await writes.write(COUNTER, KEY, one_more(seen))
    assert seen == [None, 2, 2]
    assert await writes.state(COUNTER, KEY) == 3 == len(log.events)


async def test_a_store_without_states_is_rebuilt_from_the_log_meanwhile_writes_retry() -> None:
    log = InMemoryEventLog()
    await log.append([report(), report(), report("NL/ABC/LOC2")])
    store = InMemoryDecisionStore(ready=False)
    writes = path(log, store)
    seen: list[int | None] = []
    with pytest.raises(UnavailableError, match="rebuilt"):
        await writes.write(COUNTER, KEY, one_more(seen))
    for _ in range(100):  # the rebuild runs in the background
        if await store.ready("counter"):
            break
        await asyncio.sleep(0.01)
    await writes.write(COUNTER, KEY, one_more(seen))
    assert seen == [2]
    assert await writes.state(COUNTER, "NL/ABC/LOC2") == 1


async def test_ensure_ready_builds_every_slice_once() -> None:
    log = InMemoryEventLog()
    await log.append([report()])
    store = InMemoryDecisionStore(ready=False)
    first, second = path(log, store), path(log, store)
    await asyncio.gather(first.ensure_ready([COUNTER]), second.ensure_ready([COUNTER]))
    assert await first.state(COUNTER, KEY) == 1


def _count_unless_poisoned(state: int | None, event: Any) -> int:
    if event.payload.evse_uid == "POISON":
        raise TypeError("Integer exceeds 64-bit range")  # as exact_numbers does
    return (state or 0) + 1


FRAGILE: Slice[int] = Slice(
    "fragile", LOCATIONS, _count_unless_poisoned, lambda n: str(n).encode(), int
)


def poisoned(key: str = KEY) -> EvseStatusReported:
    event = report(key)
    return event.model_copy(
        update={"payload": event.payload.model_copy(update={"evse_uid": "POISON"})}
    )


async def test_an_event_no_fold_can_apply_is_skipped_when_states_are_rebuilt() -> None:
    log = InMemoryEventLog()
    await log.append([report(), poisoned(), report(), poisoned("NL/ABC/LOC2")])
    store = InMemoryDecisionStore(ready=False)
    writes = path(log, store)
    await writes.ensure_ready([FRAGILE])
    assert await writes.state(FRAGILE, KEY) == 2  # the two good ones
    assert await writes.state(FRAGILE, "NL/ABC/LOC2") is None
    seen: list[int | None] = []
    await writes.write(FRAGILE, KEY, one_more(seen))  # the slice still takes writes
    assert seen == [2]


# A state that folds but cannot be stored (as a 40-digit integer in a
# Location: Python holds it, the decision store's JSON cannot).
def _dump_unless_poisoned(state: list[str]) -> bytes:
    if "POISON" in state:
        raise TypeError("Integer exceeds 64-bit range")
    return ",".join(state).encode()


UIDS: Slice[list[str]] = Slice(
    "uids",
    LOCATIONS,
    lambda state, event: [*(state or []), event.payload.evse_uid],
    _dump_unless_poisoned,
    lambda raw: raw.decode().split(","),
)


async def test_a_state_the_store_cannot_hold_is_refolded_without_the_event() -> None:
    log = InMemoryEventLog()
    await log.append([report(), poisoned(), report()])
    store = InMemoryDecisionStore(ready=False)
    writes = path(log, store)
    await writes.ensure_ready([UIDS])
    assert await writes.state(UIDS, KEY) == ["E1", "E1"]


# A counter found by a name that changes with every write (as a partner is
# by the hash of its current token).
NAMED: Slice[int] = Slice(
    "named", LOCATIONS, _count, lambda n: str(n).encode(), int, lambda n: [f"name-{n}"]
)


class SettleCounting(InMemoryDecisionStore):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settles: list[str] = []

    async def settle(self, slice_name: str, *, timeout_s: float) -> int:
        self.settles.append(slice_name)
        return 0


async def test_a_slice_with_lookups_is_found_by_its_current_names_and_settles() -> None:
    log, store = InMemoryEventLog(), SettleCounting()
    writes = path(log, store)
    seen: list[int | None] = []
    await writes.write(NAMED, KEY, one_more(seen))
    assert await writes.find(NAMED, "name-1") == 1
    await writes.write(NAMED, KEY, one_more(seen))
    assert await writes.find(NAMED, "name-1") is None
    assert await writes.find(NAMED, "name-2") == 2
    # Each commit waited for the caches of finds; a slice without lookups does not.
    assert store.settles == ["named", "named"]
    await writes.write(COUNTER, KEY, one_more(seen))
    assert store.settles == ["named", "named"]
    # A refusal commits nothing, so there is nothing to settle.

    def refuse(state: int | None) -> Decision[None]:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, "no")

    with pytest.raises(RefusedError):
        await writes.write(NAMED, KEY, refuse)
    assert len(store.settles) == 2


async def test_names_are_rebuilt_with_the_states() -> None:
    log = InMemoryEventLog()
    await log.append([report(), report(), report("NL/ABC/LOC2")])
    store = InMemoryDecisionStore(ready=False)
    writes = path(log, store)
    await writes.ensure_ready([NAMED])
    assert await writes.find(NAMED, "name-2") == 2
    assert await writes.find(NAMED, "name-1") == 1  # LOC2's single event
    assert store.names[("named", "name-1")] == "NL/ABC/LOC2"
