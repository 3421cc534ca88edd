"""Read-your-writes: a location read waits for the view to apply this API's
acknowledged writes, and says "retry" rather than answering from a view
that has not caught up."""

from typing import Any

import pytest

from api.consistency import read_own_writes
from api.errors import OcpiError
from projections.position import position_field
from projections.write_marks import InMemoryWriteMarks

FIELD = position_field("ocpi.locations.v1", 3)


class LaggingView:
    """Shows the location only from the ``catch_up``-th read on."""

    def __init__(self, catch_up: int | None) -> None:
        self.reads = 0
        self.catch_up = catch_up

    def _caught_up(self) -> bool:
        self.reads += 1
        return self.catch_up is not None and self.reads >= self.catch_up

    def read(self, key: str) -> tuple[Any, dict[str, int]]:
        if self._caught_up():
            return {"id": "LOC1"}, {FIELD: 42}
        return None, {FIELD: 40}

    def positions(self, key: str) -> dict[str, int]:
        return {FIELD: 42} if self._caught_up() else {FIELD: 40}


async def test_without_marks_the_view_is_read_once() -> None:
    view = LaggingView(catch_up=None)
    got = await read_own_writes(view, InMemoryWriteMarks(), "NL", "ABC", "LOC1", timeout_s=1)  # type: ignore[arg-type]
    assert got is None and view.reads == 1


async def test_a_read_waits_for_the_view_to_apply_our_write() -> None:
    marks = InMemoryWriteMarks()
    await marks.mark("NL/ABC/LOC1", 3, 41)
    await marks.mark("NL/ABC/LOC1", 3, 12)  # a lower mark never lowers the wait
    view = LaggingView(catch_up=4)
    got = await read_own_writes(view, marks, "nl", "abc", "loc1", timeout_s=5)  # type: ignore[arg-type]
    # one full read, polls of the positions until they arrive, one full read
    assert got == {"id": "LOC1"} and view.reads == 5


async def test_a_view_that_does_not_catch_up_is_a_retry_not_an_unknown_location() -> None:
    marks = InMemoryWriteMarks()
    await marks.mark("NL/ABC/LOC1", 3, 41)
    with pytest.raises(OcpiError) as caught:
        await read_own_writes(LaggingView(catch_up=None), marks, "NL", "ABC", "LOC1", timeout_s=0.2)  # type: ignore[arg-type]
    assert caught.value.status == 3000
    assert "retry" in caught.value.message
