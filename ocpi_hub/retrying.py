"""Keep a long-running part of a process going through the failures of the
services it talks to (issue 12): a lost Kafka, MongoDB or Redis connection
is logged and the part starts again after a capped exponential backoff,
instead of ending the process. Starting again is what a restart of the
process would do (consumers resume from their committed offsets, the view
writes are position-guarded), without dropping what else the process holds
(a gateway's charger connections, the push lanes of other partners)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """The pause before start number ``attempt`` + 1 (1-based): initial,
    doubling, capped."""
    return float(min(initial_s * 2 ** min(attempt - 1, 30), max_s))


async def keep_running(
    work: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    name: str,
    initial_s: float,
    max_s: float,
    healthy_after_s: float = 60.0,
) -> None:
    """Run ``work`` until ``stop`` is set. When it raises, or returns while
    ``stop`` is not set, log it (ERROR, with the error's type) and run it
    again after ``backoff_s``; a run that lasted ``healthy_after_s`` starts
    the backoff over. ``stop`` is not watched during a run: ``work`` ends
    itself on it."""
    loop = asyncio.get_running_loop()
    attempt = 0
    while not stop.is_set():
        started = loop.time()
        error: Exception | None = None
        try:
            await work()
        except Exception as exc:  # any failure: the part starts again
            error = exc
        if stop.is_set():
            return
        if loop.time() - started >= healthy_after_s:
            attempt = 0
        attempt += 1
        delay = backoff_s(attempt, initial_s, max_s)
        log.error(
            "part_failed_restarting",
            part=name,
            error_type=type(error).__name__ if error else "returned",
            # A driver's own error, not SQLAlchemy's wrapper of it, which
            # quotes the statement and its parameters.
            error=str(getattr(error, "orig", None) or error)[:300] if error else None,
            attempt=attempt,
            retry_in_s=delay,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def cancel_and_wait(
    task: asyncio.Task[object], *, name: str, again_s: float = 0.5, give_up_s: float = 10.0
) -> None:
    """Cancel ``task`` and wait until it ends, cancelling it again every
    ``again_s``. One cancellation is not always enough: redis-py's pub/sub
    read can swallow one (a lookup cache's follower then sat in a fresh
    read for ever, and with it the API's shutdown; 2026-12-07), and the
    next one reaches the await it is in now. After ``give_up_s`` the task
    is left behind, logged, rather than hold the process's shutdown."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_s
    while not task.done():
        if loop.time() >= deadline:
            log.warning("task_left_running", task=name, waited_s=give_up_s)
            return
        task.cancel()
        await asyncio.wait({task}, timeout=again_s)
    error = None if task.cancelled() else task.exception()
    if error is not None:
        detail = f"{type(error).__name__}: {error}"[:200]
        log.warning("task_failed_at_stop", task=name, error=detail)
