"""``keep_running`` (ocpi_hub/retrying.py): a failing part of a process
starts again with capped exponential backoff, logged, and ends on stop."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest
from structlog.testing import capture_logs

from ocpi_hub.retrying import backoff_s, cancel_and_wait, keep_running


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 0.5, 3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_s(10_000, 0.5, 30.0) == 30.0


async def test_a_failing_part_starts_again_until_it_runs() -> None:
    stop = asyncio.Event()
    running = asyncio.Event()
    starts: list[float] = []

    async def work() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 3:
            raise ConnectionError("Kafka away")
        running.set()
        await stop.wait()

    with capture_logs() as logs:
        task = asyncio.create_task(
            keep_running(work, stop, name="probe", initial_s=0.05, max_s=0.1)
        )
        await asyncio.wait_for(running.wait(), 2.0)
        stop.set()
        await asyncio.wait_for(task, 1.0)
    assert len(starts) == 4
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # 1 ms for the loop's timer resolution
    assert gaps[0] >= 0.049 and gaps[1] >= 0.099 and gaps[2] >= 0.099
    failed = [e for e in logs if e["event"] == "part_failed_restarting"]
    assert [e["retry_in_s"] for e in failed] == [0.05, 0.1, 0.1]
    assert {e["error_type"] for e in failed} == {"ConnectionError"}
    assert {e["log_level"] for e in failed} == {"error"}


async def test_stop_during_the_backoff_ends_at_once() -> None:
    stop = asyncio.Event()

    async def work() -> None:
        raise OSError("no route")

    task = asyncio.create_task(keep_running(work, stop, name="probe", initial_s=60, max_s=60))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 1.0)


async def test_a_part_that_returns_before_stop_starts_again() -> None:
    stop = asyncio.Event()
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            stop.set()

    await asyncio.wait_for(keep_running(work, stop, name="probe", initial_s=0.01, max_s=0.01), 1)
    assert runs == 2


async def test_cancelling_is_not_a_failure() -> None:
    stop = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(keep_running(work, stop, name="probe", initial_s=0.01, max_s=0.01))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_database_error_is_logged_without_its_statement() -> None:
    from sqlalchemy.exc import OperationalError

    stop = asyncio.Event()
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            stop.set()
            return
        raise OperationalError(
            "SELECT * FROM tokens WHERE uid = %s", ("SECRET-UID",), Exception("(2013, 'lost')")
        )

    with capture_logs() as logs:
        await asyncio.wait_for(
            keep_running(work, stop, name="probe", initial_s=0.01, max_s=0.01), 1.0
        )
    [failed] = [e for e in logs if e["event"] == "part_failed_restarting"]
    assert failed["error_type"] == "OperationalError"
    assert "2013" in failed["error"]
    assert "SECRET-UID" not in repr(logs) and "SELECT" not in repr(logs)


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again_until_it_ends() -> None:
    swallowed = 0

    async def reading() -> None:
        # As redis-py's pub/sub read did: one cancellation turned into a
        # fresh read instead of ending the task.
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(reading())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, name="reading", again_s=0.05), 5)
    assert task.cancelled()
    assert swallowed == 1


async def test_a_task_that_will_not_end_is_left_behind_after_the_bound() -> None:
    let_go = asyncio.Event()

    async def stubborn() -> None:
        while not let_go.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    started = time.monotonic()
    with capture_logs() as logs:
        await cancel_and_wait(task, name="stubborn", again_s=0.05, give_up_s=0.3)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert not task.done()
    assert [e["task"] for e in logs if e["event"] == "task_left_running"] == ["stubborn"]
    let_go.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    assert task.done()
