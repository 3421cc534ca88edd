"""Every writer gets the batch at once, each in its own thread; a batch is
done only when every writer is (projections/runner.py: BatchApplier)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from projections.dead_letters import ConcurrentWriteError, Guarded, StoreInterruptedError
from projections.position import Record
from projections.runner import BatchApplier
from schemas.events import EventMeta, EvseStatusResolved, TariffDeleted, TariffPut
from schemas.ocpi.locations import EvseStatus as S
from tests.unit.factories import resolved


class Slow:
    """Waits until every writer of the batch has started: only writers that
    run side by side get past it."""

    def __init__(self, name: str, started: threading.Barrier) -> None:
        self.name = name
        self._started = started
        self.seen: list[Record[object]] = []
        self.thread: str | None = None

    def prepare(self) -> None:
        pass

    def wipe(self) -> None:
        pass

    def apply(self, records: Sequence[Record[object]]) -> int:
        self._started.wait(timeout=5)
        self.thread = threading.current_thread().name
        self.seen += records
        return len(records)


class Broken(Slow):
    def apply(self, records: Sequence[Record[object]]) -> int:
        super().apply(records)
        raise RuntimeError("the store said no")


def test_writers_run_side_by_side_on_the_same_records() -> None:
    started = threading.Barrier(3)
    writers = [Slow(f"w{i}", started) for i in range(3)]
    applier = BatchApplier(writers)
    batch = [resolved(S.CHARGING, offset=i) for i in range(4)]
    try:
        asyncio.run(applier.apply(batch))
    finally:
        applier.close()
    assert all(w.seen == batch for w in writers)
    assert len({w.thread for w in writers}) == 3


def test_a_failing_writer_fails_the_batch_after_the_others_are_done() -> None:
    started = threading.Barrier(2)
    ok, broken = Slow("ok", started), Broken("broken", started)
    applier = BatchApplier([ok, broken])
    batch = [resolved(S.CHARGING)]
    try:
        with pytest.raises(RuntimeError, match="the store said no"):
            asyncio.run(applier.apply(batch))
    finally:
        applier.close()
    assert ok.seen == batch  # it was not cut short


class AwayOnce(Slow):
    """A store that is away at the first attempt (a lost connection), back
    at the next."""

    def __init__(self, name: str, started: threading.Barrier) -> None:
        super().__init__(name, started)
        self.attempts = 0

    def apply(self, records: Sequence[Record[object]]) -> int:
        self.attempts += 1
        if self.attempts == 1:
            raise ConnectionError("the store went away")
        return super().apply(records)


def test_a_batch_a_store_was_away_for_is_not_settled() -> None:
    """What a killed store acknowledged before it went may be gone: the batch
    is applied (the retry succeeds) but not settled, so it is not committed
    (docs/adr/0032)."""
    settled: list[int] = []
    away = Guarded(AwayOnce("away", threading.Barrier(1)), retry_initial_s=0.01)
    applier = BatchApplier([away], lambda: settled.append(1))
    try:
        asyncio.run(applier.apply([resolved(S.CHARGING)]))
        with pytest.raises(StoreInterruptedError, match="away"):
            asyncio.run(applier.settle())
    finally:
        applier.close()
    assert settled == []


def test_a_settle_that_fails_for_an_absent_store_is_an_interruption() -> None:
    def settle() -> None:
        raise ConnectionError("the store went away")

    applier = BatchApplier([Slow("ok", threading.Barrier(1))], settle)
    try:
        asyncio.run(applier.apply([resolved(S.CHARGING)]))
        with pytest.raises(StoreInterruptedError, match="settling"):
            asyncio.run(applier.settle())
    finally:
        applier.close()


def test_a_batch_without_interruption_settles() -> None:
    settled: list[int] = []
    ok = Guarded(Slow("ok", threading.Barrier(1)))
    applier = BatchApplier([ok], lambda: settled.append(1))
    try:
        asyncio.run(applier.apply([resolved(S.CHARGING)]))
        asyncio.run(applier.settle())
    finally:
        applier.close()
    assert settled == [1]


class BusyOnce(AwayOnce):
    """A store that said "not now" once (another writer on the same
    documents), without going away."""

    def apply(self, records: Sequence[Record[object]]) -> int:
        if self.attempts == 0:
            self.attempts += 1
            raise ConcurrentWriteError("another writer was faster")
        return Slow.apply(self, records)


def test_a_batch_a_store_was_only_busy_for_settles() -> None:
    """A retry for contention cannot have lost an acknowledged write: the
    batch settles and is committed as usual."""
    settled: list[int] = []
    inner = BusyOnce("busy", threading.Barrier(1))
    busy = Guarded(inner, retry_initial_s=0.01)
    applier = BatchApplier([busy], lambda: settled.append(1))
    try:
        asyncio.run(applier.apply([resolved(S.CHARGING)]))
        asyncio.run(applier.settle())
    finally:
        applier.close()
    assert inner.attempts == 1 and len(inner.seen) == 1 and settled == [1]


class Reading(Slow):
    """A writer that declares the event types it reads."""

    def __init__(self, name: str, event_types: tuple[type, ...]) -> None:
        super().__init__(name, threading.Barrier(1))
        self.event_types = event_types
        self.calls = 0

    def apply(self, records: Sequence[Record[object]]) -> int:
        self.calls += 1
        return super().apply(records)


def test_a_writer_is_not_handed_a_batch_without_an_event_type_it_reads() -> None:
    statuses = Reading("statuses", (EvseStatusResolved,))
    any_event = Reading("any event", (EventMeta,))  # a base class of every event
    tariffs = Reading("tariffs", (TariffPut, TariffDeleted))
    undeclared = Slow("undeclared", threading.Barrier(1))
    guarded_tariffs = Guarded(Reading("guarded tariffs", (TariffPut,)))
    writers = [statuses, any_event, tariffs, undeclared, guarded_tariffs]
    applier = BatchApplier(writers)
    batch = [resolved(S.CHARGING, offset=i) for i in range(3)]
    try:
        asyncio.run(applier.apply(batch))
    finally:
        applier.close()
    assert statuses.seen == batch and any_event.seen == batch and undeclared.seen == batch
    assert tariffs.calls == 0 and tariffs.seen == []
    assert guarded_tariffs.event_types == (TariffPut,)
    assert isinstance(guarded_tariffs._writer, Reading) and guarded_tariffs._writer.calls == 0
