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
from typing import Any

from api.errors import OcpiError
from projections.mongo.locations import LocationViewQuery
from projections.position import position_field
from projections.write_marks import WriteMarks
from schemas.events.locations import location_key
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import LOCATIONS


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
    wanted = await marks.marks(key)
    if not wanted:
        location, _ = await asyncio.to_thread(view.read, key)
        return location
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        location, positions = await asyncio.to_thread(view.read, key)
        if _holds(positions, wanted):
            return location
        # Behind: poll the positions alone (a small read) until they arrive.
        while not _holds(positions, wanted):
            if time.monotonic() >= deadline:
                raise OcpiError(
                    OcpiStatus.SERVER_ERROR,
                    "an earlier update of this location is still being recorded; retry",
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
            positions = await asyncio.to_thread(view.positions, key)


def _holds(positions: dict[str, int], wanted: dict[int, int]) -> bool:
    return all(positions.get(position_field(LOCATIONS.name, p), -1) >= o for p, o in wanted.items())
