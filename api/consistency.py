"""Read-your-writes for location writes (docs/adr/0009).

The API judges a write against the MongoDB view, which the projections
process fills from Kafka a little later. A partner that PUTs a location and
PATCHes it a moment after must not be told the location is unknown, so each
acknowledged write leaves a mark, per location, of the Kafka position it got
(``WriteMarks``, in Redis, shared by every API process). Before the API reads
a location to judge a write or to answer a GET, it waits until the view has
applied everything up to the marks. The wait is usually one projection
batch; if the view does not catch up within the timeout, the answer is OCPI
3000 (retry), never a wrong 2003.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from api.errors import OcpiError
from projections.mongo.locations import LocationViewQuery
from projections.position import position_field
from projections.write_marks import WriteMarks
from schemas.events.locations import location_key
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import LOCATIONS

T = TypeVar("T")


async def read_after(
    read: Callable[[], tuple[T, dict[str, int]]],
    positions: Callable[[], dict[str, int]],
    topic: str,
    wanted: dict[int, int],
    *,
    timeout_s: float,
    what: str,
) -> T:
    """What ``read`` returns once the view has applied, on ``topic``, every
    position in ``wanted`` (the marks of our acknowledged writes). While it
    is behind, only the positions are polled (a small read), then the
    object is read again. Not caught up within ``timeout_s``: OCPI 3000,
    "retry", never an answer from a view that has not seen our write."""
    value, held = await asyncio.to_thread(read)
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while not holds(held, topic, wanted):
        if time.monotonic() >= deadline:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR,
                f"an earlier change of this {what} is still being recorded; retry",
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
        held = await asyncio.to_thread(positions)
        if holds(held, topic, wanted):
            value, held = await asyncio.to_thread(read)
    return value


def holds(positions: dict[str, int], topic: str, wanted: dict[int, int]) -> bool:
    """Whether a view's positions on ``topic`` reach every wanted offset."""
    return all(positions.get(position_field(topic, p), -1) >= o for p, o in wanted.items())


async def read_own_writes(
    view: LocationViewQuery,
    marks: WriteMarks,
    country_code: str,
    party_id: str,
    location_id: str,
    *,
    timeout_s: float,
) -> dict[str, Any] | None:
    """The served location once the view holds every acknowledged write to it."""
    key = location_key(country_code, party_id, location_id)
    return await read_after(
        lambda: view.read(key),
        lambda: view.positions(key),
        LOCATIONS.name,
        await marks.marks(key),
        timeout_s=timeout_s,
        what="location",
    )
