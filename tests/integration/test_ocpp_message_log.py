"""The gateway's log of recent OCPP messages against the real Redis
(gateway/message_log.py): each charger's stream keeps its frames in order,
is trimmed near its length, expires, records the last heartbeat apart, and
reads back newest first under the names the dashboard reads."""

from __future__ import annotations

import json
import uuid

from gateway.message_log import (
    KEPT_S,
    CallTracker,
    MessageLog,
    heartbeat_key,
    messages_key,
    recent_messages,
)
from ocpi_hub.bootstrap import redis_client
from tests.services import Namespace


async def test_the_stream_is_ordered_capped_and_read_newest_first(namespace: Namespace) -> None:
    settings = namespace.settings
    redis = redis_client(settings)
    prefix = f"{settings.topic_prefix}{uuid.uuid4().hex[:8]}:"
    length, written = 50, 300
    log = MessageLog(redis, prefix, length=length, queue_max=10_000)
    calls = CallTracker()
    try:
        for n in range(written):
            frame = [2, f"id{n}", "MeterValues", {"connectorId": 1, "n": n}]
            log.frame("CP-A", json.dumps(frame), "in", calls)
            log.frame("CP-A", json.dumps([3, f"id{n}", {}]), "out", calls)
            if n % 100 == 0:
                # Several writes, so Redis trims as it goes.
                await log.write_waiting()
        log.frame("CP-B", json.dumps([2, "hb", "Heartbeat", {}]), "in", calls)
        await log.write_waiting()
        assert log.waiting == 0 and log.dropped == 0

        key = messages_key(prefix, "CP-A")
        size = await redis.xlen(key)
        # Trimmed (2 x 300 were written), whole nodes at a time: at most one
        # node (stream-node-max-entries, 100 by default) over the length.
        assert length <= size <= length + 100, size
        assert KEPT_S - 10 < await redis.ttl(key) <= KEPT_S

        newest = await recent_messages(redis, prefix, "CP-A", length)
        assert len(newest) == length
        # Newest first, both directions, each result named by its call.
        assert [(m["dir"], m["type"]) for m in newest[:2]] == [
            ("out", "CALLRESULT"),
            ("in", "CALL"),
        ]
        assert {m["action"] for m in newest} == {"MeterValues"}
        numbers = [int(m["summary"].split("n=")[1]) for m in newest if m["dir"] == "in"]
        assert numbers == list(range(written - 1, written - 1 - length // 2, -1))
        times = [m["at"] for m in newest]
        assert times == sorted(times, reverse=True)

        # Another charger's stream is its own; its heartbeat is kept apart.
        other = await recent_messages(redis, prefix, "CP-B", length)
        assert [m["action"] for m in other] == ["Heartbeat"]
        beat = await redis.get(heartbeat_key(prefix, "CP-B"))
        assert beat is not None and float(beat) == other[0]["at"]
        assert await redis.get(heartbeat_key(prefix, "CP-A")) is None
        assert await recent_messages(redis, prefix, "CP-NONE", length) == []
    finally:
        await redis.delete(
            messages_key(prefix, "CP-A"),
            messages_key(prefix, "CP-B"),
            heartbeat_key(prefix, "CP-B"),
        )
        await redis.aclose()


async def test_a_redis_that_fails_loses_the_batch_not_the_gateway(namespace: Namespace) -> None:
    settings = namespace.settings
    redis = redis_client(settings)
    prefix = f"{settings.topic_prefix}{uuid.uuid4().hex[:8]}:"
    log = MessageLog(redis, prefix, length=10, queue_max=100)
    calls = CallTracker()
    # A key of another type makes the stream write fail in Redis itself.
    await redis.set(messages_key(prefix, "CP-X"), "not a stream")
    try:
        log.frame("CP-X", json.dumps([2, "a", "Heartbeat", {}]), "in", calls)
        failed = False
        try:
            await log.write_waiting()
        except Exception:
            failed = True
        assert failed and log.dropped == 1 and log.waiting == 0
        await redis.delete(messages_key(prefix, "CP-X"))
        log.frame("CP-X", json.dumps([2, "b", "Heartbeat", {}]), "in", calls)
        assert await log.write_waiting() == 1
        assert [m["id"] for m in await recent_messages(redis, prefix, "CP-X", 10)] == ["b"]
    finally:
        await redis.delete(messages_key(prefix, "CP-X"), heartbeat_key(prefix, "CP-X"))
        await redis.aclose()
