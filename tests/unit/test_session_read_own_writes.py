"""Read-your-writes for a partner's sessions: a read waits for the view to
apply the session's last write the write path committed, and says "retry"
rather than answering from a view that has not caught up."""

from __future__ import annotations

from typing import Any

import pytest

from api.errors import OcpiError
from api.ocpi.sessions import SessionReads
from producers import sessions
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.write_path import RefusedError, WritePath
from projections.position import position_field
from schemas.events.sessions import SessionRef
from schemas.ocpi.status_codes import OcpiStatus
from tests.ocpi_sessions import session

FIELD = position_field("ocpi.sessions.v1", 2)
REF = SessionRef(country_code="nl", party_id="abc", session_id="s1")


class LaggingView:
    """Shows the session only from the ``catch_up``-th read on."""

    def __init__(self, catch_up: int | None) -> None:
        self.reads = 0
        self.catch_up = catch_up

    def _caught_up(self) -> bool:
        self.reads += 1
        return self.catch_up is not None and self.reads >= self.catch_up

    async def read(self, key: str) -> tuple[Any, dict[str, int]]:
        assert key == "NL/ABC/S1"
        if self._caught_up():
            return {"id": "S1"}, {FIELD: 7}
        return None, {FIELD: 6}

    async def positions(self, key: str) -> dict[str, int]:
        return {FIELD: 7} if self._caught_up() else {FIELD: 6}


def _write_path(committed_at: int | None) -> WritePath:
    store = InMemoryDecisionStore()
    if committed_at is not None:
        store.seed(sessions.SLICE, "NL/ABC/S1", session(), partition=2, offset=committed_at)
    log = InMemoryEventLog()
    return WritePath(log, store, InMemoryLogHistory(log))


async def test_a_read_waits_for_the_last_committed_write() -> None:
    view = LaggingView(catch_up=3)
    reads = SessionReads(view, _write_path(7), timeout_s=5)  # type: ignore[arg-type]
    assert await reads.get(REF) == {"id": "S1"}
    # one full read, polls of the positions until they arrive, one full read
    assert view.reads == 4


async def test_a_session_never_written_is_read_once() -> None:
    view = LaggingView(catch_up=None)
    reads = SessionReads(view, _write_path(None), timeout_s=5)  # type: ignore[arg-type]
    with pytest.raises(RefusedError) as err:
        await reads.get(REF)
    assert (err.value.status, err.value.http_status) == (OcpiStatus.INVALID_PARAMETERS, 404)
    assert view.reads == 1


async def test_a_view_that_never_catches_up_is_a_3000() -> None:
    reads = SessionReads(LaggingView(catch_up=None), _write_path(7), timeout_s=0.2)  # type: ignore[arg-type]
    with pytest.raises(OcpiError) as err:
        await reads.get(REF)
    assert err.value.status is OcpiStatus.SERVER_ERROR
