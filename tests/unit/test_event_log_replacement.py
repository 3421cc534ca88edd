"""``KafkaEventLog`` replaces a producer that can no longer deliver (issue
12: after a broker restart aiokafka's idempotent producer kept failing with
``OutOfOrderSequenceNumber`` until the API was restarted).

The producers here are injected through ``producer_factory``; they fail with
aiokafka's own error classes, as its sender hands them to a batch's future.
The real broker's refusal is in
tests/integration/test_producer_replacement.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from structlog.testing import capture_logs

from producers.log import KafkaEventLog, NotSentError, UnconfirmedError
from tests.unit.factories import put

SECRET = "do-not-log-this-body"


class Metadata:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition = partition
        self.offset = offset


class FakeProducer:
    """Answers each send with the next scripted outcome: an exception the
    batch future fails with, ``"raise"`` to fail ``send`` itself (as aiokafka
    does once its sender died), or None for an acknowledgement."""

    def __init__(self, outcomes: list[BaseException | str | None], start_error: bool = False):
        self.outcomes = outcomes
        self.start_error = start_error
        self.started = False
        self.stopped = False
        self.sent: list[bytes] = []
        self.stop_gate: asyncio.Event | None = None

    async def start(self) -> None:
        if self.start_error:
            raise KafkaTimeoutError("no broker")
        self.started = True

    async def stop(self) -> None:
        if self.stop_gate is not None:
            await self.stop_gate.wait()
        self.stopped = True

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        partition: int | None,
        headers: list[tuple[str, bytes]],
    ) -> asyncio.Future[Any]:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, BaseException):
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            # As aiokafka's sender: the error arrives after a round trip.
            asyncio.get_running_loop().call_later(0.01, future.set_exception, outcome)
            return future
        if outcome == "raise":
            raise KafkaError("Unexpected error during batch delivery")
        self.sent.append(value)
        future = asyncio.get_running_loop().create_future()
        future.set_result(Metadata(partition or 0, len(self.sent) - 1))
        return future


class Factory:
    def __init__(self, *producers: FakeProducer) -> None:
        self.pending = list(producers)
        self.made: list[FakeProducer] = []

    def __call__(self) -> FakeProducer:
        producer = self.pending.pop(0) if self.pending else FakeProducer([])
        self.made.append(producer)
        return producer


def event() -> Any:
    obj: dict[str, object] = {"id": "LOC1", "name": SECRET, "last_updated": "2026-01-01T12:00:00Z"}
    return put(obj).event


async def started(factory: Factory, timeout_s: float = 2.0) -> KafkaEventLog:
    log = KafkaEventLog("unused:9092", "t.", timeout_s, producer_factory=factory)
    await log.start()
    return log


@pytest.mark.parametrize(
    "error", [OutOfOrderSequenceNumber(), UnknownProducerId(), ProducerFenced()]
)
async def test_a_sequence_or_epoch_error_replaces_the_producer(error: BaseException) -> None:
    first = FakeProducer([error])
    factory = Factory(first)
    log = await started(factory)
    with capture_logs() as logs, pytest.raises(UnconfirmedError):
        # Failed: not acknowledged, and the write path treats it as unknown.
        await log.append([event()], partition=3)
    failed = [e for e in logs if e["event"] == "event_log_append_failed"]
    assert len(failed) == 1
    assert failed[0]["error_type"] == type(error).__name__
    assert failed[0]["topic"] == "t.ocpi.locations.v1"
    assert failed[0]["partition"] == 3
    assert failed[0]["log_level"] == "error"
    assert SECRET not in repr(logs)

    positions = await log.append([event()], partition=3)
    assert [p.partition for p in positions] == [3]
    assert len(factory.made) == 2 and factory.made[1].sent and not first.sent
    assert log.generation == 1
    await log.stop()
    assert first.stopped and factory.made[1].stopped


async def test_concurrent_failures_replace_the_producer_once() -> None:
    first = FakeProducer([OutOfOrderSequenceNumber() for _ in range(8)])
    factory = Factory(first)
    log = await started(factory)
    results = await asyncio.gather(
        *(log.append([event()], partition=1) for _ in range(8)), return_exceptions=True
    )
    assert all(isinstance(r, UnconfirmedError) for r in results)
    # The next appends race for the replacement: one new producer only.
    await asyncio.gather(*(log.append([event()], partition=1) for _ in range(8)))
    assert len(factory.made) == 2
    assert len(factory.made[1].sent) == 8
    assert log.generation == 1
    await log.stop()


async def test_an_ordinary_error_keeps_the_producer() -> None:
    first = FakeProducer([NotLeaderForPartitionError(), KafkaTimeoutError()])
    factory = Factory(first)
    log = await started(factory)
    for _ in range(2):
        with capture_logs() as logs, pytest.raises(UnconfirmedError):
            await log.append([event()])
        assert [e["replace_producer"] for e in logs] == [False]
    await log.append([event()])
    assert factory.made == [first] and len(first.sent) == 1
    await log.stop()


async def test_a_dead_sender_is_not_sent_and_replaced() -> None:
    first = FakeProducer(["raise"])
    factory = Factory(first)
    log = await started(factory)
    with pytest.raises(NotSentError):
        await log.append([event()])
    await log.append([event()])
    assert len(factory.made) == 2 and len(factory.made[1].sent) == 1


async def test_a_replacement_that_cannot_start_is_tried_again() -> None:
    first = FakeProducer([OutOfOrderSequenceNumber()])
    factory = Factory(first, FakeProducer([], start_error=True))
    log = await started(factory)
    with pytest.raises(UnconfirmedError):
        await log.append([event()])
    with capture_logs() as logs, pytest.raises(NotSentError):
        await log.append([event()])
    assert [e["event"] for e in logs] == ["event_log_producer_replace_failed"]
    await log.append([event()])
    assert len(factory.made) == 3 and len(factory.made[2].sent) == 1
    assert log.generation == 1


async def test_a_replaced_producer_that_cannot_flush_is_abandoned() -> None:
    first = FakeProducer([OutOfOrderSequenceNumber()])
    first.stop_gate = asyncio.Event()  # never set: its flush never ends
    factory = Factory(first)
    log = await started(factory, timeout_s=0.2)
    with pytest.raises(UnconfirmedError):
        await log.append([event()])
    with capture_logs() as logs:
        await log.append([event()])
        await log.stop()  # waits for the retirement: bounded by the timeout
    assert "event_log_producer_abandoned" in [e["event"] for e in logs]
