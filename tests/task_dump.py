"""``kill -USR1 <pytest pid>`` writes every asyncio task's stack to
``<tmp>/pytest-tasks-<pid>.txt``, for a test that hangs in an await (a
thread dump, py-spy's, shows only the event loop waiting). A file: pytest
captures the process's own stderr."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import tempfile
import traceback
from pathlib import Path
from types import FrameType
from typing import Any


def _dump(signum: int, frame: FrameType | None) -> None:
    path = Path(tempfile.gettempdir()) / f"pytest-tasks-{os.getpid()}.txt"
    with path.open("w") as out:
        _write(out, frame)


def _write(out: Any, frame: FrameType | None) -> None:
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    for loop in loops:
        if loop.is_closed():
            continue
        tasks = asyncio.all_tasks(loop)
        print(f"== {loop!r}: {len(tasks)} task(s)", file=out)
        for task in tasks:
            print(f"-- {task!r}", file=out)
            _awaited(task.get_coro(), out)
    print("== the thread the signal interrupted", file=out)
    traceback.print_stack(frame, file=out)


def install() -> None:
    signal.signal(signal.SIGUSR1, _dump)


def _awaited(awaitable: Any, out: Any) -> None:
    """The chain of what a task awaits, async generators included (a
    task's own stack stops at the first of them)."""
    seen = 0
    while awaitable is not None and seen < 50:
        seen += 1
        frame = next(
            (
                getattr(awaitable, a)
                for a in ("cr_frame", "ag_frame", "gi_frame")
                if hasattr(awaitable, a)
            ),
            None,
        )
        if frame is not None:
            print(
                f"   {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}",
                file=out,
            )
        else:
            print(f"   {awaitable!r}", file=out)
        if type(awaitable).__name__ in ("async_generator_asend", "async_generator_athrow"):
            # Not introspectable itself: the generator it drives is among
            # what it refers to.
            inner = [o for o in gc.get_referents(awaitable) if hasattr(o, "ag_frame")]
            awaitable = inner[0] if inner else None
            continue
        awaitable = next(
            (
                getattr(awaitable, a)
                for a in ("cr_await", "ag_await", "gi_yieldfrom")
                if hasattr(awaitable, a)
            ),
            None,
        )
