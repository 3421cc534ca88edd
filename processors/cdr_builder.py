"""The CDR builder: a CDR for each of OUR sessions that completes
(docs/adr/0016).

A Faust agent on ``ocpi.sessions.v1``. It folds each session's events with
the fold every session view uses (``producers.sessions.evolve``) in
a table keyed by session key, so it sees the whole session whatever PUTs
and PATCHes made it. When one of our sessions (our country code and party
id; partners' sessions share the topic) is COMPLETED and has no CDR yet, it
reads the Location and the connector's tariffs *as they were at session
start* (``projections.mongo.history``), builds and prices the CDR
(``producers.cdrs.plan_issue``, pure) and emits ``CdrIssued`` on
``ocpi.cdrs.v1``.

Exactly one CDR per session: the CDR id is the session id and the event id
is derived from the session event that completed it. Faust commits the
session event only after the CdrIssued was flushed; re-processing after a
crash emits the same event again, and every view keeps the first CDR of a
key (CDRs are immutable).

``step`` is the pure part; the lookups are a port (``CdrInputs``) with a
MongoDB adapter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog
from pymongo.errors import ConnectionFailure, PyMongoError

from ocpi_hub.retrying import backoff_s
from producers.cdrs import BuildError, cdr_start, connector_tariff_ids, plan_issue
from producers.payments import TerminalState, invoice_reference_id
from producers.pricing import PricingError
from producers.sessions import evolve
from schemas.events import CdrIssued, Party, SessionPatched, SessionPut
from schemas.ocpi.common import fold

log = structlog.get_logger(__name__)

Json = dict[str, Any]
Emit = Callable[[CdrIssued], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class BuilderState:
    """What the table keeps per session: the folded session and whether its
    CDR was issued (or given up on)."""

    session: Json | None = None
    done: bool = False

    def to_table(self) -> Json:
        return {"session": self.session, "done": self.done}

    @classmethod
    def from_table(cls, value: Any) -> BuilderState:
        if not value:
            return cls()
        return cls(session=value.get("session"), done=bool(value.get("done")))


def step(state: BuilderState, event: object, us: Party) -> tuple[BuilderState, Json | None]:
    """Fold one session event; return the new state and the session to
    build a CDR for (ours, COMPLETED, none built yet), else None."""
    if not isinstance(event, SessionPut | SessionPatched):
        return state, None
    session = evolve(state.session, event)
    after = BuilderState(session=session, done=state.done)
    if (
        session is None
        or state.done
        or session.get("status") != "COMPLETED"
        or fold(session["country_code"]) != fold(us.country_code)
        or fold(session["party_id"]) != fold(us.party_id)
    ):
        return after, None
    return after, session


class CdrInputs(Protocol):
    """What the builder reads: our Location and our tariffs as of an instant
    (awaited on the agents' loop: the history queries are async)."""

    async def location_as_of(
        self, country_code: str, party_id: str, location_id: str, at: datetime
    ) -> Json | None: ...

    async def tariff_as_of(
        self, country_code: str, party_id: str, tariff_id: str, at: datetime
    ) -> Json | None: ...

    async def terminals_serving(self, location_id: str, evse_uid: str) -> list[TerminalState]:
        """The payment terminals assigned to a location or EVSE of ours
        (docs/adr/0047); none where no terminal takes payments."""
        ...


class TerminalsServing(Protocol):
    async def serving(self, location_id: str, evse_uid: str) -> list[TerminalState]: ...


class HistoryAsOf(Protocol):
    """One object as we held it at an instant (projections/mongo/history.py)."""

    async def as_of(
        self, country_code: str, party_id: str, object_id: str, at: datetime, /
    ) -> Json | None: ...


class MongoCdrInputs:
    """The history views on MongoDB. A read that finds MongoDB away (a lost
    connection, a timeout) is tried again, 0.5 s, 1 s, 2 s ... up to
    ``retry_max_s`` apart, for as long as it takes: the session's CDR waits
    (its partition with it) rather than the agent crashing the processors
    (issue 12) or the CDR being given up."""

    def __init__(
        self,
        locations: HistoryAsOf,
        history: HistoryAsOf,
        *,
        terminals: TerminalsServing | None = None,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self._locations = locations
        self._history = history
        self._terminals = terminals
        self._initial_s = retry_initial_s
        self._max_s = retry_max_s

    async def location_as_of(
        self, country_code: str, party_id: str, location_id: str, at: datetime
    ) -> Json | None:
        return await self._read(
            self._locations, "location", country_code, party_id, location_id, at
        )

    async def tariff_as_of(
        self, country_code: str, party_id: str, tariff_id: str, at: datetime
    ) -> Json | None:
        return await self._read(self._history, "tariff", country_code, party_id, tariff_id, at)

    async def terminals_serving(self, location_id: str, evse_uid: str) -> list[TerminalState]:
        if self._terminals is None:
            return []
        terminals = self._terminals
        return await self._retried(
            "payment_terminals", lambda: terminals.serving(location_id, evse_uid)
        )

    async def _read(
        self,
        view: HistoryAsOf,
        kind: str,
        country_code: str,
        party_id: str,
        object_id: str,
        at: datetime,
    ) -> Json | None:
        return await self._retried(kind, lambda: view.as_of(country_code, party_id, object_id, at))

    async def _retried(self, kind: str, read: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await read()
            except PyMongoError as exc:
                if not (exc.timeout or isinstance(exc, ConnectionFailure)):
                    raise
                attempt += 1
                delay = backoff_s(attempt, self._initial_s, self._max_s)
                log.warning(
                    "cdr_inputs_unavailable",
                    kind=kind,
                    error_type=type(exc).__name__,
                    attempt=attempt,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)


async def tariffs_at_start(
    inputs: CdrInputs, session: Json, location: Json
) -> dict[str, Json | None]:
    """The connector's tariffs as we held them when the CDR starts (the
    session's start, or its reservation's)."""
    start = cdr_start(session)
    ids: Sequence[str] = connector_tariff_ids(
        location, session["evse_uid"], session["connector_id"]
    )
    cc, pid = location["country_code"], location["party_id"]
    held = await asyncio.gather(*(inputs.tariff_as_of(cc, pid, tid, start) for tid in ids))
    return {fold(tid): tariff for tid, tariff in zip(ids, held, strict=True)}


async def build_and_emit(
    session: Json,
    cause: SessionPut | SessionPatched,
    inputs: CdrInputs,
    emit: Emit,
    now: datetime,
    location_wait_s: float,
) -> bool:
    """Build our CDR for a completed session and emit it; False when it
    cannot be built (logged: no location after waiting, no such connector,
    not priceable)."""
    bound = log.bind(session_id=session["id"], event_id=str(cause.event_id))
    start = cdr_start(session)
    deadline = time.monotonic() + location_wait_s
    while True:
        location = await inputs.location_as_of(
            session["country_code"],
            session["party_id"],
            session["location_id"],
            start,
        )
        if location is not None or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.5)  # the location view may lag behind a brand-new location
    if location is None:
        bound.error("cdr_not_built", reason="location unknown", location_id=session["location_id"])
        return False
    try:
        at_start = await tariffs_at_start(inputs, session, location)
        terminals = await inputs.terminals_serving(session["location_id"], session["evse_uid"])
        event = plan_issue(
            session,
            location,
            at_start,
            cause_event_id=cause.event_id,
            correlation_id=cause.correlation_id,
            now=now,
            issued_at=cause.recorded_at,
            invoice_reference_id=invoice_reference_id(session, terminals),
        )
    except (BuildError, PricingError, ValueError) as exc:
        bound.error("cdr_not_built", reason=str(exc))
        return False
    await emit(event)
    bound.info(
        "cdr_issued",
        cdr_id=event.payload.cdr_id,
        tariff_source=event.payload.tariff_source,
        total_cost=event.payload.cdr["total_cost"],
    )
    return True


def register(
    app: Any,
    source_topic: Any,
    emit: Emit,
    partitions: int,
    us: Party,
    inputs: CdrInputs,
    location_wait_s: float,
) -> Any:
    """Attach the agent and its table (``cdr-builder``) to a Faust app."""
    import faust  # local import: the pure rule above must not need Faust

    from processors.clock import utc_now
    from schemas.events import parse_event

    table = app.Table(
        "cdr-builder",
        default=None,
        partitions=partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )

    @app.agent(source_topic, name="cdr-builder")  # type: ignore[untyped-decorator]
    async def cdr_builder(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            try:
                event = parse_event(raw)
            except ValueError:
                log.warning("cdr_builder_skipped_undecodable")
                continue
            if not isinstance(event, SessionPut | SessionPatched):
                continue
            key = event.aggregate_key
            before = BuilderState.from_table(table.get(key))
            after, completed = step(before, event, us)
            if completed is not None:
                await build_and_emit(completed, event, inputs, emit, utc_now(), location_wait_s)
                # Given up on or issued: either way, never again for this session.
                after = BuilderState(session=after.session, done=True)
            if after != before:
                table[key] = after.to_table()

    return cdr_builder
