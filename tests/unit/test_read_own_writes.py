"""Read-your-writes: a read of one object waits for the view to apply the
object's last write the write path committed, and says "retry" rather than
answering from a view that has not caught up."""

from typing import Any

import pytest

from api.errors import OcpiError
from api.ocpi.locations import LocationReads
from producers.decision_store import InMemoryDecisionStore
from producers.locations import SLICE
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.write_path import WritePath
from projections.position import position_field
from schemas.events.locations import LocationObjectRef

FIELD = position_field("ocpi.locations.v1", 3)
REF = LocationObjectRef(country_code="nl", party_id="abc", location_id="loc1")


class LaggingView:
    """Shows the location only from the ``catch_up``-th read on."""

    def __init__(self, catch_up: int | None) -> None:
        self.reads = 0
        self.catch_up = catch_up

    def _caught_up(self) -> bool:
        self.reads += 1
        return self.catch_up is not None and self.reads >= self.catch_up

    async def read(self, key: str) -> tuple[Any, dict[str, int]]:
        if self._caught_up():
            return {"id": "LOC1"}, {FIELD: 42}
        return None, {FIELD: 40}

    async def positions(self, key: str) -> dict[str, int]:
        return {FIELD: 42} if self._caught_up() else {FIELD: 40}


def _write_path(committed_at: int | None) -> WritePath:
    store = InMemoryDecisionStore()
    if committed_at is not None:
        store.states[(SLICE.name, "NL/ABC/LOC1")] = {
            "v": "x",
            "s": b"{}",
            "p": 3,
            "o": committed_at,
        }
    log = InMemoryEventLog()
    return WritePath(log, store, InMemoryLogHistory(log))


async def test_an_object_never_written_is_read_once() -> None:
    view = LaggingView(catch_up=None)
    reads = LocationReads(view, _write_path(None), timeout_s=1)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="unknown location"):
        await reads.get(REF)
    assert view.reads == 1


async def test_a_read_waits_for_the_view_to_apply_the_last_write() -> None:
    view = LaggingView(catch_up=4)
    reads = LocationReads(view, _write_path(41), timeout_s=5)  # type: ignore[arg-type]
    got = await reads.get(REF)
    # one full read, polls of the positions until they arrive, one full read
    assert got == {"id": "LOC1"} and view.reads == 5


async def test_a_view_that_does_not_catch_up_is_a_retry_not_an_unknown_location() -> None:
    reads = LocationReads(LaggingView(catch_up=None), _write_path(41), timeout_s=0.2)  # type: ignore[arg-type]
    with pytest.raises(OcpiError) as caught:
        await reads.get(REF)
    assert caught.value.status == 3000
    assert "retry" in caught.value.message
