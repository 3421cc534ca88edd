"""Read-your-writes for the views (docs/adr/0022).

Writes are decided against the decision store, never a view; the views are
filled by the projections process a little later. A partner that PUTs an
object and GETs it a moment after must see what it wrote, so a read of one
object first asks the write path where the object's last committed event
sits in the log and waits until the view has applied it. The wait is
usually one projection batch; if the view does not catch up within the
timeout, the answer is OCPI 3000 (retry), never an answer from a view that
has not seen the write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from api.errors import OcpiError
from producers.write_path import Slice, WritePath
from projections.position import position_field
from schemas.ocpi.status_codes import OcpiStatus

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


async def read_after(
    read: Callable[[], Awaitable[tuple[T, dict[str, int]]]],
    positions: Callable[[], Awaitable[dict[str, int]]],
    topic: str,
    wanted: dict[int, int],
    *,
    timeout_s: float,
    what: str,
) -> T:
    """What ``read`` returns once the view has applied, on ``topic``, every
    position in ``wanted``. While it is behind, only the positions are
    polled (a small read), then the object is read again. Not caught up
    within ``timeout_s``: OCPI 3000, "retry"."""
    value, held = await read()
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while not holds(held, topic, wanted):
        if time.monotonic() >= deadline:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR,
                f"an earlier change of this {what} is still being recorded; retry",
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
        held = await positions()
        if holds(held, topic, wanted):
            value, held = await read()
    return value


def holds(positions: dict[str, int], topic: str, wanted: dict[int, int]) -> bool:
    """Whether a view's positions on ``topic`` reach every wanted offset."""
    return all(positions.get(position_field(topic, p), -1) >= o for p, o in wanted.items())


async def written(write_path: WritePath, slice_: Slice[Any], key: str) -> dict[int, int]:
    """The position a read of ``key`` must wait for: its last committed event."""
    at = await write_path.position(slice_, key)
    return {at[0]: at[1]} if at is not None else {}


class ObjectView(Protocol[T_co]):
    """A view of one document per aggregate, with the positions it applied
    (read on the event loop: the queries of projections/mongo are async)."""

    async def read(self, key: str, /) -> tuple[T_co, dict[str, int]]: ...

    async def positions(self, key: str, /) -> dict[str, int]: ...


async def read_written(
    view: ObjectView[T],
    write_path: WritePath,
    slice_: Slice[Any],
    key: str,
    *,
    timeout_s: float,
    what: str,
) -> T:
    """``key``'s document in ``view`` once the view holds the aggregate's last
    committed write (``read_after``)."""
    return await read_after(
        lambda: view.read(key),
        lambda: view.positions(key),
        slice_.topic.name,
        await written(write_path, slice_, key),
        timeout_s=timeout_s,
        what=what,
    )
