"""Read-your-writes for sessions: a session read waits for the view to apply
this API's acknowledged writes to that session, and says "retry" rather
than answering from a view that has not caught up."""

from __future__ import annotations

from typing import Any

import pytest

from api.errors import OcpiError
from api.ocpi.sessions import SessionStore, mark_key
from projections.position import position_field
from projections.write_marks import InMemoryWriteMarks
from schemas.events.sessions import SessionRef
from schemas.ocpi.status_codes import OcpiStatus

FIELD = position_field("ocpi.sessions.v1", 2)
REF = SessionRef(country_code="nl", party_id="abc", session_id="s1")


class LaggingView:
    """Shows the session only from the ``catch_up``-th read on."""

    def __init__(self, catch_up: int | None) -> None:
        self.reads = 0
        self.catch_up = catch_up

    def read(self, key: str) -> tuple[Any, dict[str, int]]:
        assert key == "NL/ABC/S1"
        self.reads += 1
        if self.catch_up is not None and self.reads >= self.catch_up:
            return {"id": "S1"}, {FIELD: 7}
        return None, {FIELD: 6}


async def test_a_read_waits_for_the_marked_write() -> None:
    marks = InMemoryWriteMarks()
    await marks.mark(mark_key(REF.session_key), 2, 7)
    view = LaggingView(catch_up=3)
    store = SessionStore(view, marks, timeout_s=5)  # type: ignore[arg-type]
    assert await store.current(REF) == {"id": "S1"}
    assert view.reads == 3


async def test_without_marks_the_view_is_read_once() -> None:
    view = LaggingView(catch_up=None)
    store = SessionStore(view, InMemoryWriteMarks(), timeout_s=5)  # type: ignore[arg-type]
    assert await store.current(REF) is None
    assert view.reads == 1


async def test_a_view_that_never_catches_up_is_a_3000() -> None:
    marks = InMemoryWriteMarks()
    await marks.mark(mark_key(REF.session_key), 2, 7)
    store = SessionStore(LaggingView(catch_up=None), marks, timeout_s=0.2)  # type: ignore[arg-type]
    with pytest.raises(OcpiError) as err:
        await store.current(REF)
    assert err.value.status is OcpiStatus.SERVER_ERROR


def test_session_marks_do_not_share_keys_with_location_marks() -> None:
    assert mark_key("NL/ABC/S1") != "NL/ABC/S1"
