"""Which failures quarantine an event and which wait for the store, how a
failing batch is narrowed down to its bad events, and what a dead letter
says (projections/dead_letters.py, docs/adr/0028)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from aiokafka import ConsumerRecord
from pydantic import BaseModel, ValidationError
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)
from pymysql.err import DataError as MySQLDataError
from pymysql.err import OperationalError as MySQLOperationalError
from sqlalchemy.exc import DataError, OperationalError

from projections.dead_letters import (
    ConcurrentWriteError,
    Guarded,
    Quarantine,
    StoppedWhileAwayError,
    describe,
    is_transient,
    quarantined_event,
)
from projections.mongo.dead_letters import QUARANTINED, RESOLVED, apply, count_keys
from projections.position import Record
from projections.runner import decoded
from schemas.events import EventQuarantined, Party, parse_event, serialize_event
from schemas.ocpi.locations import EvseStatus as S
from tests.unit.factories import resolved

US = Party(country_code="ZZ", party_id="HUB")
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def sql_error(cls: type[Exception], orig: Exception) -> Exception:
    return cls("INSERT INTO t VALUES (%s)", {"secret": "TOKEN-VALUE"}, orig)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "exc",
    [
        AutoReconnect("connection closed"),
        ServerSelectionTimeoutError("no servers"),
        NetworkTimeout("timed out"),
        OperationFailure("shutting down", code=91),
        BulkWriteError({"writeErrors": [{"index": 0, "code": 11600, "errmsg": "interrupted"}]}),
        sql_error(OperationalError, MySQLOperationalError(2013, "Lost connection")),
        sql_error(OperationalError, MySQLOperationalError(2003, "Can't connect")),
        sql_error(OperationalError, MySQLOperationalError(1213, "Deadlock")),
        ConcurrentWriteError("documents kept changing"),
        ConnectionRefusedError(),
    ],
)
def test_a_store_that_is_away_is_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        OverflowError("MongoDB can only handle up to 8-byte ints"),
        sql_error(DataError, MySQLDataError(1264, "Out of range value for column 'max_voltage'")),
        sql_error(OperationalError, MySQLOperationalError(1054, "Unknown column")),
        BulkWriteError({"writeErrors": [{"index": 0, "code": 2, "errmsg": "bad value"}]}),
        DuplicateKeyError("E11000 on another unique index"),
        KeyError("evses"),
        ValueError("not a location"),
    ],
)
def test_an_event_that_cannot_be_applied_is_not_transient(exc: Exception) -> None:
    assert not is_transient(exc)


class Token(BaseModel):
    token: str
    amount: int


def test_described_errors_quote_no_input_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Token.model_validate({"token": "S3CRET-TOKEN", "amount": "S3CRET-AMOUNT"})
    kind, message = describe(caught.value)
    assert kind == "ValidationError"
    assert "amount" in message
    assert "S3CRET" not in message
    kind, message = describe(
        sql_error(DataError, MySQLDataError(1264, "Out of range value for column 'max_voltage'"))
    )
    assert kind == "DataError(DataError)"
    assert "max_voltage" in message
    assert "TOKEN-VALUE" not in message and "INSERT" not in message


class Store:
    """A writer with the position guard of the real ones: an event at or
    below the stored position changes nothing. It refuses a whole batch
    (writes none of it) when any event in it is poison; it can be made
    'away' for a number of calls."""

    name = "fake.view"

    def __init__(self, poison: set[int], away_for: int = 0) -> None:
        self.poison = poison
        self.away_for = away_for
        self.applied: list[int] = []
        self.position = -1
        self.calls = 0

    def prepare(self) -> None:
        pass

    def wipe(self) -> None:
        pass

    def apply(self, records: Sequence[Record[object]]) -> int:
        self.calls += 1
        if self.away_for:
            self.away_for -= 1
            raise AutoReconnect("store restarting")
        if any(r.offset in self.poison for r in records):
            raise OverflowError("MongoDB can only handle up to 8-byte ints")
        written = 0
        for r in records:
            if r.offset > self.position:
                self.applied.append(r.offset)
                self.position = r.offset
                written += 1
        return written


def batch(n: int) -> list[Record[object]]:
    return [resolved(S.CHARGING, offset=i) for i in range(n)]


def test_only_the_bad_events_are_quarantined_and_the_rest_applied_once_in_order() -> None:
    store = Store(poison={3, 17, 18})
    guarded = Guarded(store)
    written = guarded.apply(batch(40))
    failures = guarded.take_failures()
    assert sorted(f.record.offset for f in failures) == [3, 17, 18]
    assert {f.error_type for f in failures} == {"OverflowError"}
    assert store.applied == [i for i in range(40) if i not in (3, 17, 18)]
    assert written == 37
    assert guarded.take_failures() == []  # taken once
    # Bisection: a few dozen attempts for three bad events in forty, not forty.
    assert store.calls < 30


def test_a_store_that_is_away_is_waited_for_and_nothing_quarantined() -> None:
    store = Store(poison=set(), away_for=3)
    guarded = Guarded(store, retry_initial_s=0.01, retry_max_s=0.02)
    assert guarded.apply(batch(5)) == 5
    assert guarded.take_failures() == []
    assert store.applied == [0, 1, 2, 3, 4]
    assert store.calls == 4


def test_stopping_while_the_store_is_away_leaves_the_batch_undone() -> None:
    stopping = threading.Event()
    store = Store(poison=set(), away_for=1_000)
    guarded = Guarded(store, stopping=stopping, retry_initial_s=0.01, retry_max_s=0.02)
    threading.Timer(0.1, stopping.set).start()
    with pytest.raises(StoppedWhileAwayError):
        guarded.apply(batch(5))
    assert store.applied == []
    assert guarded.take_failures() == []


def quarantine(**fields: object) -> Quarantine:
    base: dict[str, object] = {
        "view": "mongo.locations",
        "topic": "ocpi.locations.v1",
        "partition": 2,
        "offset": 41,
        "key": b"NL/ABC/LOC1",
        "value": b'{"payload": 1}',
        "error_type": "OverflowError",
        "error_message": "MongoDB can only handle up to 8-byte ints",
    }
    return Quarantine(**{**base, **fields})  # type: ignore[arg-type]


def test_a_dead_letter_is_keyed_by_its_source_position_and_its_id_is_stable() -> None:
    event = quarantined_event(quarantine(), US, NOW)
    assert event.aggregate_key == "ocpi.locations.v1/2/41"
    assert event.payload.dead_letter_id == "mongo.locations|ocpi.locations.v1/2/41"
    assert event.payload.source_value == '{"payload": 1}'
    assert event.payload.value_encoding == "utf-8"
    # The same failure again (a restart before the commit): the same event id.
    assert quarantined_event(quarantine(), US, NOW).event_id == event.event_id
    assert parse_event(serialize_event(event)) == event


def test_bytes_that_are_not_text_are_kept_as_base64_and_big_values_cut() -> None:
    event = quarantined_event(quarantine(value=b"\xff\xfe\x00"), US, NOW)
    assert event.payload.value_encoding == "base64"
    assert event.payload.source_value == "//4A"
    big = quarantined_event(quarantine(value=b"x" * 300_000), US, NOW)
    assert big.payload.value_truncated
    assert len(big.payload.source_value or "") == 256 * 1024


def test_the_view_counts_a_dead_letter_until_it_is_resolved() -> None:
    from schemas.events import QuarantinedEventResolved
    from schemas.events.dead_letters import QuarantinedEventResolvedPayload

    event = quarantined_event(quarantine(), US, NOW)
    doc = apply(None, Record("ocpi-hub.dead-letters.v1", 0, 0, event))
    assert doc is not None
    assert doc["status"] == QUARANTINED and doc["attempts"] == 1
    assert count_keys(doc) == {"mongo.locations"}
    # Re-delivered: nothing changes.
    assert apply(doc, Record("ocpi-hub.dead-letters.v1", 0, 0, event)) is doc
    again = apply(doc, Record("ocpi-hub.dead-letters.v1", 0, 1, event))
    assert again is not None and again["attempts"] == 2
    p = event.payload
    done = QuarantinedEventResolved(
        event_id=event.event_id,
        aggregate_key=event.aggregate_key,
        occurred_at=NOW,
        recorded_at=NOW,
        source=US,
        correlation_id="c",
        payload=QuarantinedEventResolvedPayload(
            view=p.view,
            source_topic=p.source_topic,
            source_partition=p.source_partition,
            source_offset=p.source_offset,
            outcome="APPLIED",
        ),
    )
    resolved_doc = apply(again, Record("ocpi-hub.dead-letters.v1", 0, 2, done))
    assert resolved_doc is not None
    assert resolved_doc["status"] == RESOLVED and resolved_doc["outcome"] == "APPLIED"
    assert count_keys(resolved_doc) == frozenset()
    assert isinstance(event, EventQuarantined)


def message(
    offset: int, value: bytes | None, event_type: str | None
) -> ConsumerRecord[bytes, bytes]:
    headers = [("event_type", event_type.encode())] if event_type else []
    return ConsumerRecord(
        "p.ocpi.evse-status.v1", 1, offset, 0, 0, b"NL/ABC/LOC1", value, None, 11, 0, headers
    )


def test_what_does_not_decode_is_set_aside_for_every_view_and_the_rest_is_read() -> None:
    good = resolved(S.CHARGING, offset=0).event
    failed: list[Quarantine] = []
    records = decoded(
        "p.",
        [
            message(0, serialize_event(good), "EvseStatusResolved"),
            message(1, b"{not json", None),
            message(2, None, "EvseStatusResolved"),  # a tombstone
            message(3, b"{}", "SomethingNewer"),  # a type this version skips
        ],
        failed,
    )
    assert [(r.topic, r.offset) for r in records] == [("ocpi.evse-status.v1", 0)]
    assert [(q.view, q.topic, q.partition, q.offset) for q in failed] == [
        ("decode", "ocpi.evse-status.v1", 1, 1),
        ("decode", "ocpi.evse-status.v1", 1, 2),
    ]
    assert failed[0].value == b"{not json" and failed[0].key == b"NL/ABC/LOC1"
    assert failed[0].error_type == "ValidationError"
