"""Events a view cannot apply are set aside, not fatal (docs/adr/0028).

A projection writer applies a batch as a whole (docs/adr/0025). When it
fails, ``Guarded`` tells two kinds of failure apart:

* **the store is away** (``is_transient``: a lost or refused connection, a
  server selection timeout, a deadlock): nothing is wrong with the events.
  The whole batch is tried again with backoff, for as long as it takes, and
  nothing is quarantined; the batch is not done, so no offset is committed.
* **an event cannot be applied** (anything else: a value the store refuses,
  a fold that raises): the batch is split in halves, each half applied on
  its own, and a half that fails is split again, down to the single events
  that fail alone. Those are the dead letters; every other event is applied,
  in log order, once (a half that succeeded is not sent again; one that
  failed wrote nothing, or only what its position guard then skips).

The runner turns the dead letters into ``EventQuarantined`` events on the
dead-letter topic before it commits the batch's offsets, so a restart does
not meet them again.
"""

from __future__ import annotations

import base64
import functools
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

import structlog
from pydantic import ValidationError
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from projections.position import Record, Writer, read_types
from schemas.events import EventQuarantined, Party, QuarantinedEventResolved, derived_event_id
from schemas.events.dead_letters import (
    EventQuarantinedPayload,
    QuarantinedEventResolvedPayload,
    dead_letter_id,
    source_key,
)

T = TypeVar("T")

log = structlog.get_logger(__name__)

# MongoDB server error codes that say "not now" rather than "not this":
# shutdown, failover, interruption, time limits, network.
_MONGO_TRANSIENT_CODES = frozenset(
    {6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}
)
# MariaDB/MySQL: deadlock, lock wait timeout, server gone or shutting down,
# too many connections, and the client's own connection errors (2xxx).
_MYSQL_TRANSIENT_CODES = frozenset({1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055})

_MESSAGE_LIMIT = 2000


class ConcurrentWriteError(RuntimeError):
    """Another writer kept changing the same documents: a matter of timing,
    not of the events (retried, never quarantined)."""


# Of those, the ones that say the server went away (shut down, stepped
# down, interrupted at shutdown): it may have lost what it acknowledged.
_MONGO_GONE_CODES = frozenset({91, 189, 10107, 11600, 11602, 13435, 13436})
_MYSQL_GONE_CODES = frozenset({1053, 1927, 2002, 2003, 2006, 2013, 2055})


def store_lost(exc: BaseException) -> bool:
    """True when ``exc`` says the connection to the store broke or the
    server went away, so that what it acknowledged before may be gone with
    it (docs/adr/0032); a deadlock, a lock wait or a time limit is only
    "not now"."""
    if isinstance(exc, ConnectionError | ConnectionFailure):
        return True  # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError, ...
    if isinstance(exc, BulkWriteError):
        errors = [*exc.details.get("writeErrors", []), *exc.details.get("writeConcernErrors", [])]
        return any(e.get("code") in _MONGO_GONE_CODES for e in errors)
    if isinstance(exc, OperationFailure):
        return exc.code in _MONGO_GONE_CODES
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        code = orig.args[0] if orig is not None and orig.args else None
        return code in _MYSQL_GONE_CODES or type(orig).__name__ == "InterfaceError"
    return False


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says the store (not the event) is the problem."""
    if isinstance(exc, ConcurrentWriteError | PoolTimeout | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError):
        return True  # AutoReconnect, ServerSelectionTimeoutError, NetworkTimeout, ...
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        concern = exc.details.get("writeConcernErrors", [])
        return bool(errors or concern) and all(
            e.get("code") in _MONGO_TRANSIENT_CODES for e in [*errors, *concern]
        )
    if isinstance(exc, PyMongoError):
        if exc.has_error_label("RetryableWriteError") or exc.timeout:
            return True
        return isinstance(exc, OperationFailure) and exc.code in _MONGO_TRANSIENT_CODES
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        code = orig.args[0] if orig is not None and orig.args else None
        # PyMySQL's InterfaceError (0, '') is a connection closed under us.
        return code in _MYSQL_TRANSIENT_CODES or type(orig).__name__ == "InterfaceError"
    return False


def describe(exc: BaseException) -> tuple[str, str]:
    """The error's type and a message that quotes no input value (an event
    may hold a partner's token hashes or sealed token): a validation error
    is told by field and rule, a database error by the driver's own message
    without the statement's parameters."""
    error_type = type(exc).__name__
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        message = f"{exc.error_count()} validation error(s): " + "; ".join(parts)
    elif isinstance(exc, DBAPIError) and exc.orig is not None:
        error_type = f"{error_type}({type(exc.orig).__name__})"
        message = str(exc.orig)
    elif isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        message = "; ".join(f"{e.get('code')}: {e.get('errmsg', '')}" for e in errors[:5])
    else:
        message = str(exc)
    return error_type, message[:_MESSAGE_LIMIT]


@dataclass(frozen=True)
class Failure:
    """One event one view could not apply."""

    view: str
    record: Record[object]
    error_type: str
    error_message: str


class StoreInterruptedError(Exception):
    """A store was away while a batch was written (or settled): what it had
    acknowledged of the batch before it went may be gone with it (a killed
    server loses what it had not journaled, docs/adr/0032). The batch is not
    committed; the projections start again from the last commit, with fresh
    writers (their caches may hold what the store lost)."""


class StoppedWhileAwayError(Exception):
    """The process is stopping while a store is away: the batch is left
    unapplied (its offsets uncommitted) for the next start."""


class Guarded:
    """A writer that survives events it cannot apply (see the module).

    Used by one thread at a time (the runner's writer thread), so the
    failures of a batch are read with ``take_failures`` after ``apply``.
    """

    def __init__(
        self,
        writer: Writer,
        *,
        stopping: threading.Event | None = None,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self._writer = writer
        self.name = writer.name
        self.event_types = read_types(writer)
        self._stopping = stopping or threading.Event()
        self._initial = retry_initial_s
        self._max = retry_max_s
        self._failures: list[Failure] = []
        # Set when the store was away during an apply (see StoreInterruptedError).
        self.interrupted = False

    def prepare(self) -> None:
        self._until_done(self._writer.prepare)

    def wipe(self) -> None:
        self._until_done(self._writer.wipe)

    def apply(self, records: Sequence[Record[object]]) -> int:
        try:
            return self._until_done(lambda: self._writer.apply(records))
        except StoppedWhileAwayError:
            raise
        except Exception as exc:
            return self._isolate(records, exc)

    def take_failures(self) -> list[Failure]:
        failures, self._failures = self._failures, []
        return failures

    def _isolate(self, records: Sequence[Record[object]], exc: Exception) -> int:
        if len(records) == 1:
            error_type, message = describe(exc)
            self._failures.append(Failure(self.name, records[0], error_type, message))
            return 0
        log.warning(
            "projection_batch_isolating",
            view=self.name,
            events=len(records),
            error_type=type(exc).__name__,
        )
        middle = len(records) // 2
        written = 0
        # In order: the first half's events come before the second's in the
        # log (and for any one key).
        for part in (records[:middle], records[middle:]):
            try:
                written += self._until_done(functools.partial(self._writer.apply, part))
            except StoppedWhileAwayError:
                raise
            except Exception as part_exc:
                written += self._isolate(part, part_exc)
        return written

    def _until_done(self, work: Callable[[], T]) -> T:
        return until_done(
            work,
            self.name,
            stopping=self._stopping,
            initial_s=self._initial,
            max_s=self._max,
            on_retry=self._interrupted,
        )

    def _interrupted(self, exc: Exception) -> None:
        if store_lost(exc):
            self.interrupted = True


def until_done(
    work: Callable[[], T],
    name: str,
    *,
    stopping: threading.Event,
    initial_s: float,
    max_s: float,
    on_retry: Callable[[Exception], None] | None = None,
) -> T:
    """``work()``, again and again with backoff while the store is away
    (``on_retry`` told each time); StoppedWhileAwayError if ``stopping`` is
    set meanwhile."""
    delay = initial_s
    attempt = 0
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if on_retry is not None:
                on_retry(exc)
            attempt += 1
            log.warning(
                "projection_store_unavailable",
                view=name,
                attempt=attempt,
                retry_in_s=delay,
                error_type=type(exc).__name__,
                error=describe(exc)[1][:300],
            )
            if stopping.wait(delay):
                raise StoppedWhileAwayError(name) from exc
            delay = min(delay * 2, max_s)


# --- dead letters as events -------------------------------------------------------------

# How much of a source record a dead letter copies (the log keeps the whole).
VALUE_COPY_LIMIT = 256 * 1024


@dataclass(frozen=True)
class Quarantine:
    """What a dead letter says about one source record for one view."""

    view: str
    topic: str  # catalogue name, without deployment prefix
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error_type: str
    error_message: str
    # Of the source event, when it decoded.
    event_id: uuid.UUID | None = None
    correlation_id: str | None = None

    @property
    def dead_letter_id(self) -> str:
        return dead_letter_id(self.view, self.topic, self.partition, self.offset)


def _text(raw: bytes | None, limit: int) -> tuple[str | None, Literal["utf-8", "base64"], bool]:
    if raw is None:
        return None, "utf-8", False
    cut = len(raw) > limit
    raw = raw[:limit]
    try:
        return raw.decode("utf-8"), "utf-8", cut
    except UnicodeDecodeError:
        # A cut may split a character: base64 keeps whatever bytes there are.
        return base64.b64encode(raw).decode("ascii"), "base64", cut


def _cause(q: Quarantine) -> uuid.UUID:
    return q.event_id or uuid.uuid5(uuid.NAMESPACE_URL, source_key(q.topic, q.partition, q.offset))


def quarantined_event(q: Quarantine, us: Party, now: datetime) -> EventQuarantined:
    """The dead letter of ``q``. Its id follows from the failure (view,
    position, error), so quarantining the same event again after a crash
    writes the same event."""
    value, encoding, cut = _text(q.value, VALUE_COPY_LIMIT)
    key, _, _ = _text(q.key, 1000)
    return EventQuarantined(
        event_id=derived_event_id(
            _cause(q), f"quarantined:{q.view}:{q.error_type}:{q.error_message}"
        ),
        aggregate_key=source_key(q.topic, q.partition, q.offset),
        occurred_at=now,
        recorded_at=now,
        source=us,
        correlation_id=(q.correlation_id or "dead-letter")[:100],
        causation_id=q.event_id,
        payload=EventQuarantinedPayload(
            view=q.view,
            source_topic=q.topic,
            source_partition=q.partition,
            source_offset=q.offset,
            source_key=key,
            source_value=value,
            value_encoding=encoding,
            value_truncated=cut,
            error_type=q.error_type[:200],
            error_message=q.error_message[:_MESSAGE_LIMIT],
        ),
    )


def resolved_event(
    q: Quarantine, outcome: Literal["APPLIED", "SUPERSEDED"], us: Party, now: datetime
) -> QuarantinedEventResolved:
    return QuarantinedEventResolved(
        event_id=derived_event_id(_cause(q), f"resolved:{q.view}:{now.isoformat()}"),
        aggregate_key=source_key(q.topic, q.partition, q.offset),
        occurred_at=now,
        recorded_at=now,
        source=us,
        correlation_id=(q.correlation_id or "dead-letter")[:100],
        causation_id=q.event_id,
        payload=QuarantinedEventResolvedPayload(
            view=q.view,
            source_topic=q.topic,
            source_partition=q.partition,
            source_offset=q.offset,
            outcome=outcome,
        ),
    )


def log_quarantine(q: Quarantine, *, published: bool) -> None:
    """One ERROR line per quarantined event: where it sits and why, never
    its key or value (they may name a token, or hold a partner's token
    hashes)."""
    log.error(
        "event_quarantined",
        view=q.view,
        topic=q.topic,
        partition=q.partition,
        offset=q.offset,
        dead_letter_id=q.dead_letter_id,
        error_type=q.error_type,
        error=q.error_message[:500],
        published=published,
    )
