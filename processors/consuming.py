"""One topic read in a consumer group of our own, event by event, offsets
committed after each batch: the loop the billing worker's parts share
(``processors/billing_charges.py``, ``processors/invitation_mailer.py``).
Each part's handler is idempotent, so a batch handled again (after a crash
before its commit) changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer

from producers.write_path import Slice, WritePath
from schemas.events import parse_event

log = structlog.get_logger(__name__)

# An event and its offset in its partition.
Handler = Callable[[object, int], Awaitable[None]]


async def consume(
    bootstrap: str, topic: str, group: str, handle: Handler, stop: asyncio.Event, *, name: str
) -> None:
    """Read ``topic`` in ``group`` until ``stop``, handing each event to
    ``handle``; a record no reader can parse is logged and passed over."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        # Metadata read while the topic had no partitions (just created, a
        # broker restarting) would leave the group assigned nothing for
        # aiokafka's default 5 minutes.
        metadata_max_age_ms=30_000,
    )
    await consumer.start()
    log.info(f"{name}_started")
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=100)
            for messages in batches.values():
                for message in messages:
                    if message.value is None:
                        continue
                    try:
                        event = parse_event(message.value)
                    except ValueError:
                        # A type this version does not know (a newer
                        # producer) or a record no reader can parse: not
                        # ours to handle, and never worth stopping for.
                        log.warning(
                            f"{name}_event_skipped",
                            partition=message.partition,
                            offset=message.offset,
                        )
                        continue
                    await handle(event, message.offset)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


async def state_caught_up(
    write_path: WritePath, slice_: Slice[Any], key: str, offset: int | None, *, timeout_s: float
) -> bool:
    """Wait until the write path's state of ``key`` holds the event read at
    ``offset`` of its partition: the write path appends, then commits the
    state, so the event can be read a moment before its state is stored.
    Up to ``timeout_s`` (a hold's lifetime: a holder that died is recovered
    by the next write); False when it did not catch up in time."""
    if offset is None:
        return True
    for _ in range(int(timeout_s / 0.05)):
        position = await write_path.position(slice_, key)
        if position is not None and position[1] >= offset:
            return True
        await asyncio.sleep(0.05)
    return False
