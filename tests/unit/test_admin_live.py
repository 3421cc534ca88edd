"""The status board's fan-out of EVSE status changes (api/admin/live.py):
numbering, replay after a position, gaps, filters, slow watchers. No services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from api.admin.live import BoardFilter, EvseStatusHub, GapError, OnDemandFeed, board_stream
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


async def _take(stream: AsyncIterator[bytes], n: int) -> list[bytes]:
    out = []
    async for chunk in stream:
        out.append(chunk)
        if len(out) == n:
            break
    return out


async def _yes() -> bool:
    return True


async def _no() -> bool:
    return False


async def test_a_board_gets_what_it_missed_then_live_changes_of_its_evses_only() -> None:
    hub = EvseStatusHub(capacity=100)
    hub.publish(resolved("E1", EvseStatus.AVAILABLE))  # before the page: not sent
    start = hub.seq
    hub.publish(resolved("E1", EvseStatus.CHARGING))  # while the page was read
    hub.publish(resolved("E9", EvseStatus.CHARGING, location="OTHER"))
    stream = board_stream(hub, BoardFilter(location_id="LOC1"), start, _yes, keepalive_s=5)
    [missed] = await _take(stream, 1)
    assert missed.startswith(b"id: 2\nevent: evse\n") and b'"CHARGING"' in missed
    later = asyncio.get_running_loop().call_later(
        0.05, hub.publish, resolved("E1", EvseStatus.OUTOFORDER)
    )
    [live] = await _take(stream, 1)
    later.cancel()
    event = json.loads(live.split(b"data: ")[1])
    assert event["status"] == "OUTOFORDER" and event["seq"] == 4
    await stream.aclose()


async def test_a_board_that_missed_too_much_is_told_to_reload() -> None:
    hub = EvseStatusHub(capacity=100)
    hub.publish(resolved("E1", EvseStatus.AVAILABLE))
    hub.reset()
    stream = board_stream(hub, BoardFilter(), 1, _yes, keepalive_s=5)
    assert await _take(stream, 2) == [b"event: reload\ndata: {}\n\n"]


async def test_a_quiet_board_is_kept_alive_and_ends_with_its_session() -> None:
    hub = EvseStatusHub(capacity=100)
    alive = board_stream(hub, BoardFilter(), 0, _yes, keepalive_s=0.01)
    assert await _take(alive, 2) == [b": keep-alive\n\n"] * 2
    await alive.aclose()
    ended = board_stream(hub, BoardFilter(), 0, _no, keepalive_s=0.01)
    assert await _take(ended, 3) == [b"event: signedout\ndata: {}\n\n"]
    assert hub.watchers == 0


# --- the feed runs only while boards want it ----------------------------------------


class FakeFollow:
    """Stands in for the Kafka read: positions itself, then publishes what
    the test hands it until cancelled; ``fail`` makes the next run raise
    once positioned."""

    def __init__(self, hub: EvseStatusHub) -> None:
        self.hub = hub
        self.runs = 0
        self.running = False
        self.fail = False
        self.changes: asyncio.Queue[EvseStatusResolved] = asyncio.Queue()

    async def __call__(self, positioned: asyncio.Event) -> None:
        self.runs += 1
        self.running = True
        try:
            positioned.set()
            if self.fail:
                self.fail = False
                raise ConnectionError("broker lost")
            while True:
                self.hub.publish(await self.changes.get())
        finally:
            self.running = False


async def _until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the time allowed")


async def test_the_feed_starts_for_a_board_and_stops_when_none_watches() -> None:
    hub = EvseStatusHub(capacity=100)
    follow = FakeFollow(hub)
    feed = OnDemandFeed(hub, follow, idle_s=0.3)
    assert not feed.running and follow.runs == 0  # nobody watches: nothing read
    try:
        await feed.wanted()
        assert follow.running and follow.runs == 1
        start = hub.seq
        follow.changes.put_nowait(resolved("E1", EvseStatus.CHARGING))
        await _until(lambda: hub.seq == start + 1)
        # A connected board keeps it running past the idle time...
        with hub.watch():
            await asyncio.sleep(0.8)
            assert follow.running
            await feed.wanted()  # a second board: the same run
            assert follow.runs == 1
        # ...and with none left it stops.
        await _until(lambda: not follow.running)
        assert not feed.running
        # The next board starts it again; a number from the last run is a gap.
        await feed.wanted()
        assert follow.running and follow.runs == 2
        with pytest.raises(GapError):
            hub.since(start)
    finally:
        await feed.close()
    assert not follow.running


async def test_a_failed_feed_starts_again_and_boards_load_afresh() -> None:
    hub = EvseStatusHub(capacity=100)
    follow = FakeFollow(hub)
    follow.fail = True
    feed = OnDemandFeed(hub, follow, idle_s=30, restart_s=0.05)
    try:
        with hub.watch() as queue:
            await feed.wanted()
            await _until(lambda: follow.runs == 2 and follow.running)
            # The watcher was told to reload when the feed started again.
            assert queue.get_nowait() is None
    finally:
        await feed.close()


async def test_without_a_follow_the_feed_leaves_the_hub_alone() -> None:
    hub = EvseStatusHub(capacity=100)
    hub.publish(resolved("E1", EvseStatus.CHARGING))
    feed = OnDemandFeed(hub, None, idle_s=1)
    await feed.wanted()
    assert not feed.running
    assert [c.seq for c in hub.since(0)] == [1]
