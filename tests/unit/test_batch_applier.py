"""Every writer gets the batch at once, each in its own thread; a batch is
done only when every writer is (projections/runner.py: BatchApplier)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from projections.position import Record
from projections.runner import BatchApplier
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
