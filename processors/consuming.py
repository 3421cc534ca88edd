"""One topic read in a consumer group of our own, event by event, offsets
committed after each batch: the loop the billing worker's parts share
(``processors/billing_charges.py``, ``processors/invitation_mailer.py``).
Each part's handler is idempotent, so a batch handled again (after a crash
before its commit) changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer

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
