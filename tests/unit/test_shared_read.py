"""The pushers' shared read of a view (processors/push.py, ``SharedRead``)."""

from __future__ import annotations

import asyncio

import pytest

from processors.push import SharedRead


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class View:
    """Counts reads; each read answers the read's number, after ``gate`` opens."""

    def __init__(self) -> None:
        self.reads = 0
        self.fail_next = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def all(self) -> list[int]:
        self.reads += 1
        number = self.reads
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("view away")
        return [number]


async def test_callers_at_once_share_one_read_and_a_fresh_answer_is_reused() -> None:
    view, clock = View(), Clock()
    shared = SharedRead(view.all, fresh_s=5.0, clock=clock)
    view.gate.clear()
    waiting = [asyncio.create_task(shared.all()) for _ in range(6)]
    await asyncio.sleep(0)
    view.gate.set()
    assert await asyncio.gather(*waiting) == [[1]] * 6
    clock.now += 4.9
    assert await shared.all() == [1]
    assert view.reads == 1
    clock.now += 0.1
    assert await shared.all() == [2]
    assert view.reads == 2


async def test_a_failed_read_is_not_kept() -> None:
    view, clock = View(), Clock()
    shared = SharedRead(view.all, fresh_s=5.0, clock=clock)
    view.fail_next = True
    with pytest.raises(ConnectionError):
        await shared.all()
    assert await shared.all() == [2]  # read again at once, no wait for freshness
    assert view.reads == 2


async def test_a_cancelled_caller_leaves_the_read_to_the_others() -> None:
    view, clock = View(), Clock()
    shared = SharedRead(view.all, fresh_s=5.0, clock=clock)
    view.gate.clear()
    first = asyncio.create_task(shared.all())
    second = asyncio.create_task(shared.all())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    view.gate.set()
    assert await second == [1]
    assert first.cancelled()
    assert view.reads == 1
