"""The status board's fan-out of EVSE status changes (api/admin/live.py):
numbering, replay after a position, gaps, filters, slow watchers. No services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.admin.live import BoardFilter, EvseStatusHub, GapError
from schemas.events import new_event_id
from schemas.events.locations import EvseStatusResolved, EvseStatusResolvedPayload, location_key
from schemas.ocpi.locations import EvseStatus

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def resolved(
    evse: str, status: EvseStatus, *, location: str = "LOC1", party: str = "ABC"
) -> EvseStatusResolved:
    return EvseStatusResolved(
        event_id=new_event_id(),
        aggregate_key=location_key("NL", party, location),
        occurred_at=AT,
        recorded_at=AT,
        source={"country_code": "NL", "party_id": party},
        correlation_id="c",
        payload=EvseStatusResolvedPayload(
            country_code="NL", party_id=party, location_id=location, evse_uid=evse,
            status=status, last_updated=AT, reported_status=status,
        ),
    )  # fmt: skip


def test_changes_are_numbered_and_replayed_after_a_position() -> None:
    hub = EvseStatusHub(capacity=100)
    first = hub.publish(resolved("E1", EvseStatus.AVAILABLE))
    second = hub.publish(resolved("E1", EvseStatus.OUTOFORDER))
    assert (first.seq, second.seq) == (1, 2)
    assert second.evse_key == "NL/ABC/LOC1/E1" and second.status == "OUTOFORDER"
    assert second.last_updated == "2026-12-06T12:00:00Z"
    assert [c.seq for c in hub.since(0)] == [1, 2]
    assert [c.seq for c in hub.since(1)] == [2]
    assert hub.since(2) == []


def test_a_position_older_than_the_buffer_or_unknown_is_a_gap() -> None:
    hub = EvseStatusHub(capacity=100)
    for _ in range(150):
        hub.publish(resolved("E1", EvseStatus.CHARGING))
    assert len(hub.since(50)) == 100
    with pytest.raises(GapError):
        hub.since(49)
    with pytest.raises(GapError):
        hub.since(151)  # from another process or before a restart


async def test_every_watcher_gets_every_change_and_a_slow_one_is_cut_off() -> None:
    hub = EvseStatusHub(capacity=100, queue_size=2)
    with hub.watch() as fast, hub.watch() as slow:
        hub.publish(resolved("E1", EvseStatus.CHARGING))
        assert (await fast.get()).status == "CHARGING"  # type: ignore[union-attr]
        hub.publish(resolved("E1", EvseStatus.AVAILABLE))
        assert (await fast.get()).status == "AVAILABLE"  # type: ignore[union-attr]
        hub.publish(resolved("E1", EvseStatus.BLOCKED))  # slow holds 2 already
        assert hub.watchers == 1
        contents = [slow.get_nowait(), slow.get_nowait()]
        assert contents[-1] is None  # told it was cut off: it reconnects


async def test_a_reset_makes_every_board_load_afresh() -> None:
    hub = EvseStatusHub(capacity=100)
    hub.publish(resolved("E1", EvseStatus.CHARGING))
    with hub.watch() as queue:
        hub.reset()
        assert queue.get_nowait() is None
    with pytest.raises(GapError):
        hub.since(1)
    assert hub.since(hub.seq) == []


def test_a_board_filter_compares_ids_folded() -> None:
    change = EvseStatusHub().publish(resolved("E1", EvseStatus.OUTOFORDER, location="Loc-7"))
    assert BoardFilter().matches(change)
    assert BoardFilter(location_id="LOC-7", country_code="nl", party_id="abc").matches(change)
    assert BoardFilter(status="OUTOFORDER").matches(change)
    assert not BoardFilter(status="AVAILABLE").matches(change)
    assert not BoardFilter(location_id="LOC-8").matches(change)
    assert not BoardFilter(party_id="XYZ").matches(change)
