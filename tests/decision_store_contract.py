"""The decision store's contract (producers/write_path.py, DecisionStore),
one suite for every adapter: the in-memory fake (tests/unit) and Redis
(tests/integration), so that the fake cannot drift from the real store.

Each test takes a ``store`` and a slice name unique to the test.
"""

from __future__ import annotations

import uuid
from typing import Any

from producers.write_path import DecisionStore, Hold

T0 = 1_800_000_000_000  # ms
TTL = 30_000


def name() -> str:
    return f"contract-{uuid.uuid4().hex[:8]}"


async def outcome(store: Any, s: str, token: str, at: int) -> Hold:
    claim = await store.claim(s, "K", token, now_ms=at, ttl_ms=TTL, have=None)
    held: Hold = claim.outcome
    return held


async def ready_store(store: Any, slice_name: str) -> DecisionStore:
    await store.rebuilt(slice_name, {})
    s: DecisionStore = store
    return s


async def test_a_slice_never_built_is_not_ready(store: Any) -> None:
    s = name()
    assert not await store.ready(s)
    claim = await store.claim(s, "K", "t1", now_ms=T0, ttl_ms=TTL, have=None)
    assert claim.outcome is Hold.NOT_READY


async def test_a_new_key_is_held_without_state_then_committed(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    claim = await store.claim(s, "K", "t1", now_ms=T0, ttl_ms=TTL, have=None)
    assert claim.outcome is Hold.OK
    assert claim.stored.version == "" and claim.stored.raw is None
    assert claim.stored.partition is None and claim.stored.offset is None
    assert await store.commit(s, "K", "t1", version="v1", raw=b"S1", partition=3, offset=7)
    again = await store.claim(s, "K", "t2", now_ms=T0 + 1, ttl_ms=TTL, have=None)
    assert again.outcome is Hold.OK
    assert (again.stored.version, again.stored.raw) == ("v1", b"S1")
    assert (again.stored.partition, again.stored.offset) == (3, 7)
    assert await store.position(s, "K") == (3, 7)


async def test_the_state_is_not_sent_to_who_has_it(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    await store.claim(s, "K", "t1", now_ms=T0, ttl_ms=TTL, have=None)
    await store.commit(s, "K", "t1", version="v1", raw=b"S1", partition=0, offset=1)
    claim = await store.claim(s, "K", "t2", now_ms=T0, ttl_ms=TTL, have="v1")
    assert claim.stored.version == "v1" and claim.stored.raw is None
    peeked = await store.peek(s, "K", have="v1")
    assert peeked.version == "v1" and peeked.raw is None
    await store.release(s, "K", "t2")
    peeked = await store.peek(s, "K", have="v0")
    assert peeked.raw == b"S1"


async def test_a_held_key_is_busy_for_others_until_released(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    assert (await store.claim(s, "K", "t1", now_ms=T0, ttl_ms=TTL, have=None)).outcome is Hold.OK
    busy = await store.claim(s, "K", "t2", now_ms=T0 + 10, ttl_ms=TTL, have=None)
    assert busy.outcome is Hold.BUSY
    await store.release(s, "K", "t2")  # not the holder: changes nothing
    assert (
        await store.claim(s, "K", "t3", now_ms=T0 + 20, ttl_ms=TTL, have=None)
    ).outcome is Hold.BUSY
    await store.release(s, "K", "t1")
    assert (
        await store.claim(s, "K", "t4", now_ms=T0 + 30, ttl_ms=TTL, have=None)
    ).outcome is Hold.OK


async def test_a_commit_by_a_holder_that_lost_the_key_is_refused(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    await store.claim(s, "K", "t1", now_ms=T0, ttl_ms=TTL, have=None)
    # t1 never came back; after the TTL t2 takes the key over (to recover it).
    taken = await store.claim(s, "K", "t2", now_ms=T0 + TTL + 1, ttl_ms=TTL, have=None)
    assert taken.outcome is Hold.RECOVER
    assert taken.since_ms == T0  # when the lost holder took it
    assert not await store.commit(s, "K", "t1", version="late", raw=b"X", partition=0, offset=9)
    assert await store.commit(s, "K", "t2", version="v2", raw=b"S2", partition=0, offset=9)
    assert (await store.peek(s, "K", have=None)).raw == b"S2"


async def test_an_abandoned_key_stays_held_until_its_fate_is_known_then_recovers(
    store: Any,
) -> None:
    s = name()
    await ready_store(store, s)
    await store.claim(s, "K", "t1", now_ms=T0, ttl_ms=TTL, have=None)
    await store.abandon(s, "K", "t1", until_ms=T0 + 5_000)
    assert (
        await store.claim(s, "K", "t2", now_ms=T0 + 4_999, ttl_ms=TTL, have=None)
    ).outcome is Hold.BUSY
    recovering = await store.claim(s, "K", "t3", now_ms=T0 + 5_001, ttl_ms=TTL, have=None)
    assert recovering.outcome is Hold.RECOVER and recovering.since_ms == T0
    # If the recovering holder is lost too, the next one still reads from T0.
    again = await store.claim(s, "K", "t4", now_ms=T0 + 5_001 + TTL + 1, ttl_ms=TTL, have=None)
    assert again.outcome is Hold.RECOVER and again.since_ms == T0


async def test_a_state_can_be_cleared_and_keeps_its_position(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    await store.claim(s, "K", "t1", now_ms=T0, ttl_ms=TTL, have=None)
    await store.commit(s, "K", "t1", version="v1", raw=b"S1", partition=1, offset=4)
    await store.claim(s, "K", "t2", now_ms=T0, ttl_ms=TTL, have="v1")
    await store.commit(s, "K", "t2", version="v2", raw=None, partition=1, offset=5)
    claim = await store.claim(s, "K", "t3", now_ms=T0, ttl_ms=TTL, have=None)
    assert claim.stored.version == "" and claim.stored.raw is None
    assert (claim.stored.partition, claim.stored.offset) == (1, 5)


async def test_peek_of_a_key_never_written_is_none(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    assert await store.peek(s, "nothing", have=None) is None
    assert await store.position(s, "nothing") is None
    # a claim that wrote nothing leaves nothing behind
    await store.claim(s, "K", "t1", now_ms=T0, ttl_ms=TTL, have=None)
    await store.release(s, "K", "t1")
    assert await store.peek(s, "K", have=None) is None


async def test_a_rebuild_replaces_every_state_and_one_process_leads_it(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    await store.claim(s, "OLD", "t1", now_ms=T0, ttl_ms=TTL, have=None)
    await store.commit(s, "OLD", "t1", version="v1", raw=b"gone", partition=0, offset=1)
    assert await store.lead_rebuild(s, "p1", 60_000)
    assert await store.lead_rebuild(s, "p1", 60_000)  # the leader renews
    assert not await store.lead_rebuild(s, "p2", 60_000)
    await store.rebuilt(s, {"A": (b"SA", 2, 10), "B": (b"SB", 4, 3)})
    assert await store.ready(s)
    assert await store.peek(s, "OLD", have=None) is None
    a = await store.peek(s, "A", have=None)
    assert (a.raw, a.partition, a.offset) == (b"SA", 2, 10)
    assert await store.lead_rebuild(s, "p2", 60_000)  # the rebuild ended the lead


async def test_keys_lists_the_aggregates_with_a_state_and_only_those(store: Any) -> None:
    s, other = name(), name()
    await ready_store(store, s)
    await ready_store(store, other)
    assert await store.keys(s) == []
    for key, token in (("A/1", "t1"), ("B*[x]", "t2")):
        await store.claim(s, key, token, now_ms=T0, ttl_ms=TTL, have=None)
        await store.commit(s, key, token, version="v1", raw=b"S", partition=0, offset=1)
    await store.claim(other, "C", "t3", now_ms=T0, ttl_ms=TTL, have=None)
    await store.commit(other, "C", "t3", version="v1", raw=b"S", partition=0, offset=1)
    # Held without a state yet, or committed without one: not listed.
    await store.claim(s, "HELD", "t4", now_ms=T0, ttl_ms=TTL, have=None)
    await store.claim(s, "NONE", "t5", now_ms=T0, ttl_ms=TTL, have=None)
    await store.commit(s, "NONE", "t5", version="v1", raw=None, partition=0, offset=2)
    assert sorted(await store.keys(s)) == ["A/1", "B*[x]"]
    assert await store.keys(other) == ["C"]
    await store.rebuilt(s, {"D": (b"SD", 1, 1)})
    assert await store.keys(s) == ["D"]


# --- names (a slice with lookups, docs/adr/0024) ---------------------------------


async def commit_named(
    store: Any, s: str, key: str, token: str, names: list[str], raw: Any
) -> bool:
    await store.claim(s, key, token, now_ms=T0, ttl_ms=TTL, have=None)
    kept: bool = await store.commit(
        s, key, token, version=f"v-{token}", raw=raw, partition=0, offset=1, names=names
    )
    return kept


async def test_a_state_is_found_by_its_names_and_only_its_current_ones(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    assert await store.find(s, "h1") is None
    assert await commit_named(store, s, "P", "t1", ["h1"], b"S1")
    key, stored = await store.find(s, "h1")
    assert key == "P" and (stored.version, stored.raw) == ("v-t1", b"S1")
    # A rotation: the new name finds it, the old one nothing.
    assert await commit_named(store, s, "P", "t2", ["h2"], b"S2")
    assert await store.find(s, "h1") is None
    key, stored = await store.find(s, "h2")
    assert key == "P" and stored.raw == b"S2"
    # No names (an unregistered partner), then no state at all.
    assert await commit_named(store, s, "P", "t3", [], b"S3")
    assert await store.find(s, "h2") is None
    assert await commit_named(store, s, "Q", "t4", ["hq"], b"SQ")
    assert await commit_named(store, s, "Q", "t5", [], None)
    assert await store.find(s, "hq") is None


async def test_a_name_another_state_took_is_left_to_it(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    await commit_named(store, s, "A", "t1", ["shared"], b"SA")
    await commit_named(store, s, "B", "t2", ["shared"], b"SB")
    await commit_named(store, s, "A", "t3", ["a-only"], b"SA2")
    key, _ = await store.find(s, "shared")
    assert key == "B"


async def test_a_commit_by_a_lost_holder_changes_no_name(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    await commit_named(store, s, "P", "t1", ["h1"], b"S1")
    await store.claim(s, "P", "t2", now_ms=T0, ttl_ms=TTL, have=None)
    late = await store.commit(
        s, "P", "not-the-holder", version="x", raw=b"X", partition=0, offset=2, names=["hx"]
    )
    assert not late
    assert await store.find(s, "hx") is None
    assert (await store.find(s, "h1"))[0] == "P"


async def test_a_rebuild_replaces_every_name(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    await commit_named(store, s, "OLD", "t1", ["h-old"], b"gone")
    await store.rebuilt(s, {"A": (b"SA", 0, 3), "B": (b"SB", 0, 4)}, {"A": ["ha"], "B": []})
    assert await store.find(s, "h-old") is None
    key, stored = await store.find(s, "ha")
    assert key == "A" and (stored.raw, stored.offset) == (b"SA", 3)
    # The rebuilt state's names are replaced by its next commit as usual.
    await commit_named(store, s, "A", "t2", ["ha2"], b"SA2")
    assert await store.find(s, "ha") is None
    assert (await store.find(s, "ha2"))[0] == "A"


async def test_settling_with_no_cache_listening_waits_for_nobody(store: Any) -> None:
    s = name()
    await ready_store(store, s)
    assert await store.settle(s, timeout_s=0.5) == 0
